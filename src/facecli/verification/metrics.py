"""Verification metrics: the LFW 10-fold protocol, ROC/AUC, EER and TAR@FAR.

Scores are "higher means same": cosine similarity, or minus the distance. A pair is predicted
genuine when its score is above the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np

from facecli.errors import FaceCliError, unknown_choice

if TYPE_CHECKING:
    from facecli.verification.reject_curve import RejectCurve

Metric = Literal["cosine", "euclidean"]
METRICS: tuple[str, ...] = get_args(Metric)
SCORE_COLUMNS = {"score": "cosine", "distance": "euclidean"}  # a scores CSV's column -> the metric it holds
FARS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
REFERENCE_DISTANCE_GRID = np.arange(0, 4, 0.01)  # the FaceNet port's grid on L2 distances


@dataclass
class Counts:
    """Confusion counts at each threshold (vectorised)."""

    tp: np.ndarray
    fp: np.ndarray
    tn: np.ndarray
    fn: np.ndarray

    @property
    def accuracy(self) -> np.ndarray:
        return (self.tp + self.tn) / (self.tp + self.fp + self.tn + self.fn)

    @property
    def tar(self) -> np.ndarray:
        """True accept rate (TPR, recall); 0 where there are no genuine pairs."""
        return np.divide(self.tp, self.tp + self.fn, out=np.zeros(len(self.tp)), where=(self.tp + self.fn) > 0)

    @property
    def far(self) -> np.ndarray:
        """False accept rate (FPR); 0 where there are no impostor pairs."""
        return np.divide(self.fp, self.fp + self.tn, out=np.zeros(len(self.fp)), where=(self.fp + self.tn) > 0)


def counts(scores: np.ndarray, labels: np.ndarray, thresholds: np.ndarray) -> Counts:
    """Confusion counts for `score > threshold` at every threshold, by binary search in sorted scores."""
    genuine = np.sort(scores[labels.astype(bool)])
    impostor = np.sort(scores[~labels.astype(bool)])
    fn = np.searchsorted(genuine, thresholds, side="right")  # genuine scores <= threshold
    tn = np.searchsorted(impostor, thresholds, side="right")
    return Counts(tp=len(genuine) - fn, fp=len(impostor) - tn, tn=tn, fn=fn)


def check_metric(metric: str) -> Metric:
    """`metric` if it is one of METRICS, else a one-line error listing them."""
    if metric not in METRICS:
        raise unknown_choice("metric", metric, METRICS)
    return metric  # type: ignore[return-value]


def metric_of_column(column: str) -> Metric:
    """The metric a scores file's column holds: `score` a similarity, `distance` an L2 distance."""
    if column not in SCORE_COLUMNS:
        raise FaceCliError(f"a scores file's column is score or distance, not '{column}'")
    return SCORE_COLUMNS[column]  # type: ignore[return-value]


def column_of_metric(metric: Metric) -> str:
    """The scores-file column that holds scores of `metric`: the inverse of metric_of_column."""
    return next(column for column, held in SCORE_COLUMNS.items() if held == metric)


def threshold_grid(scores: np.ndarray, metric: Metric) -> np.ndarray:
    """Thresholds to search: the reference's 0.01 grid for L2 distances, else midpoints of observed scores."""
    if metric == "euclidean" and scores.min() > -4:
        return -REFERENCE_DISTANCE_GRID
    values = np.unique(scores)
    if len(values) > 4000:
        values = np.quantile(values, np.linspace(0, 1, 4000))
    mids = (values[:-1] + values[1:]) / 2
    return np.concatenate([[values[0] - 1e-6], mids, [values[-1] + 1e-6]])


@dataclass
class VerificationReport:
    """Everything `facecli eval` reports, thresholds in score units (see `metric`)."""

    metric: Metric
    pairs: int
    genuine: int
    impostor: int
    folds: int
    accuracy_per_fold: list[float]
    threshold_per_fold: list[float]
    accuracy_mean: float
    accuracy_std: float
    auc: float
    eer: float
    tar_at_far: dict[str, float]
    best_threshold: float
    best_accuracy: float
    tar_curve: list[float] = field(repr=False, default_factory=list)
    far_curve: list[float] = field(repr=False, default_factory=list)
    images: int | None = None
    forward_passes: int | None = None
    reject_curve: RejectCurve | None = None  # a model with a quality score: error as low-quality pairs are set aside


def kfold_accuracy(
    scores: np.ndarray, labels: np.ndarray, thresholds: np.ndarray, folds: np.ndarray | None = None, n_folds: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The LFW protocol: per fold, the threshold maximising accuracy on the other folds (first maximum).

    Returns per-fold accuracies, per-fold thresholds, and the mean TAR and FAR curves over `thresholds`
    computed on each held-out fold. Without `folds`, consecutive blocks (KFold without shuffling).
    """
    index = np.arange(len(scores))
    if folds is None:  # as scikit-learn's KFold without shuffling: the first len % n folds one longer
        splits = [(np.setdiff1d(index, test), test) for test in np.array_split(index, n_folds)]
    else:
        splits = [(index[folds != k], index[folds == k]) for k in np.unique(folds)]
    accuracies, best, tars, fars = [], [], [], []
    for train, test in splits:
        pick = int(np.argmax(counts(scores[train], labels[train], thresholds).accuracy))
        held_out = counts(scores[test], labels[test], thresholds)
        accuracies.append(held_out.accuracy[pick])
        best.append(thresholds[pick])
        tars.append(held_out.tar)
        fars.append(held_out.far)
    return np.array(accuracies), np.array(best), np.mean(tars, 0), np.mean(fars, 0)


def tar_at_far(scores: np.ndarray, labels: np.ndarray, fars: tuple[float, ...] = FARS) -> dict[str, float]:
    """Highest TAR with FAR <= each target, for targets the impostor count can resolve (>= 1/FAR impostors).

    One sort of the impostor scores serves every target: at FAR f at most k = floor(f * impostors) may
    score above the threshold, so the threshold is the (k+1)-th highest impostor score and TAR is the
    share of genuine scores above it (ties at it are rejected, as a ROC curve's points do). Memory is
    one copy of the scores, whatever the number of targets.
    """
    genuine = np.asarray(scores)[labels == 1]
    impostor = np.sort(np.asarray(scores)[labels == 0])
    found = {}
    for far in fars:
        if len(impostor) < round(1 / far):
            continue
        allowed = int(np.floor(far * len(impostor) + 1e-9))
        if allowed >= len(impostor):
            found[f"{far:g}"] = 1.0 if len(genuine) else 0.0
            continue
        threshold = impostor[len(impostor) - allowed - 1]
        found[f"{far:g}"] = float(np.count_nonzero(genuine > threshold) / max(len(genuine), 1))
    return found


def roc_points(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FAR, TAR) at every distinct score as the threshold (accepting scores >= it), from (0, 0) up: the
    ROC curve, as scikit-learn's roc_curve computes it with no point dropped."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    ordered, accepted = np.asarray(scores)[order], np.asarray(labels)[order].astype(bool)
    ends = np.r_[np.flatnonzero(np.diff(ordered)), len(ordered) - 1]  # last index of each distinct score
    tp, fp = np.cumsum(accepted)[ends], np.cumsum(~accepted)[ends]
    return np.r_[0.0, fp / max(fp[-1], 1)], np.r_[0.0, tp / max(tp[-1], 1)]


def area_under_curve(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic with tied scores counted half (scikit-learn's value)."""
    labels = np.asarray(labels).astype(bool)
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    average_rank = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # 1-based ranks, ties averaged
    genuine, impostor = int(labels.sum()), int((~labels).sum())
    return float((average_rank[labels].sum() - genuine * (genuine + 1) / 2) / (genuine * impostor))


def equal_error_rate(scores: np.ndarray, labels: np.ndarray) -> float:
    """The rate where FAR equals FRR, interpolated on the ROC curve."""
    fpr, tpr = roc_points(scores, labels)
    frr = 1 - tpr
    i = int(np.flatnonzero(fpr >= frr)[0])
    if i == 0:
        return float(fpr[0])
    # linear interpolation between the two ROC points that bracket FAR == FRR
    d0, d1 = fpr[i - 1] - frr[i - 1], fpr[i] - frr[i]
    t = d0 / (d0 - d1)
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def to_display(values: np.ndarray | float, metric: Metric) -> np.ndarray | float:
    """Scores are 'higher means same'; show distances as distances. Its own inverse, so it also converts back."""
    return -values if metric == "euclidean" else values


def verification_report(
    scores: np.ndarray,
    labels: np.ndarray,
    metric: Metric,
    folds: np.ndarray | None = None,
    n_folds: int = 10,
) -> VerificationReport:
    """All verification metrics for one set of scored, labelled pairs."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    thresholds = threshold_grid(scores, metric)
    accuracies, best, tar_curve, far_curve = kfold_accuracy(scores, labels, thresholds, folds, n_folds)
    overall = counts(scores, labels, thresholds).accuracy
    pick = int(np.argmax(overall))
    return VerificationReport(
        metric=metric,
        pairs=len(scores),
        genuine=int(labels.sum()),
        impostor=int((labels == 0).sum()),
        folds=len(accuracies),
        accuracy_per_fold=accuracies.tolist(),
        threshold_per_fold=[to_display(t, metric) for t in best],
        accuracy_mean=float(accuracies.mean()),
        accuracy_std=float(accuracies.std()),
        auc=area_under_curve(scores, labels),
        eer=equal_error_rate(scores, labels),
        tar_at_far=tar_at_far(scores, labels),
        best_threshold=to_display(float(thresholds[pick]), metric),
        best_accuracy=float(overall[pick]),
        tar_curve=tar_curve.tolist(),
        far_curve=far_curve.tolist(),
    )
