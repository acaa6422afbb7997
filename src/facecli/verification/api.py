"""`facecli eval`, `predict` and `sweep`: every option checked first, then pairs scored once and measured."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from facecli.embed import EmbedOptions
from facecli.embed.backends import model_config
from facecli.embed.backends import save_threshold as save_model_threshold
from facecli.errors import FaceCliError
from facecli.fileio import atomic_path, check_writable, write_text_atomic
from facecli.verification.metrics import VerificationReport, column_of_metric, counts, to_display, verification_report
from facecli.verification.scores_file import ScoresFile, read_scores
from facecli.verification.scoring import PairsInput, ScoredPairs, check_pairs, score_pairs

SELECTIONS = "accuracy, f1, far=<rate>"


def _labelled(scored: ScoredPairs) -> np.ndarray:
    if scored.pairs.labels is None:
        raise FaceCliError(f"{scored.pairs.source}: has no labels (or identity columns) to evaluate against")
    if np.isnan(scored.scores).any():
        raise FaceCliError("cannot evaluate with missing images; remove those pairs")
    return scored.pairs.labels


def _as_scores_file(scored: ScoredPairs) -> ScoresFile:
    return ScoresFile(scored.scores, _labelled(scored), scored.pairs.folds, scored.metric)


def report_scores(
    data: ScoresFile,
    *,
    folds: int = 10,
    report: str | os.PathLike[str] | None = None,
    plot: str | os.PathLike[str] | None = None,
    counted: tuple[int, int] | None = None,
) -> VerificationReport:
    """The LFW protocol (+ AUC, EER, TAR@FAR) on labelled scores; writes the report and plot when asked.

    `counted` (unique images, forward passes) goes into the report where the scores were embedded here.
    """
    if data.labels.min() == data.labels.max():
        raise FaceCliError("evaluation needs both genuine and impostor pairs")
    if data.folds is None and len(data.scores) < folds:
        raise FaceCliError(f"{len(data.scores)} pairs are too few for {folds} folds (set --folds)")
    result = verification_report(data.scores, data.labels, data.metric, data.folds, folds)
    if counted is not None:
        result.images, result.forward_passes = counted
    if report:
        write_text_atomic(report, json.dumps(dataclasses.asdict(result), indent=2) + "\n")
    if plot:
        from facecli.plots import roc_and_histograms

        roc_and_histograms(data.scores, data.labels, result.best_threshold, data.metric, plot)
    return result


def _write_csv(table: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


@dataclass(frozen=True)
class TemplatePairs:
    """IJB-style input: images grouped into templates and media, and labelled pairs of templates."""

    templates: Path
    pairs: Path
    root: Path | None = None  # the images' folder (default: the templates file's)


def _score_templates(
    checkpoint: Path, given: TemplatePairs, embedding: EmbedOptions
) -> tuple[ScoresFile, pd.DataFrame, tuple[int, int]]:
    """Templates pooled as the IJB scripts pool them and their pairs scored: the scores, the table `--scores`
    writes, and (unique images, forward passes)."""
    from facecli.embed import embed_files
    from facecli.verification.templates import pool, read_template_pairs, read_templates
    from facecli.verification.templates import score_pairs as score_template_pairs

    templates = read_templates(given.templates, given.root)
    first, second, labels = read_template_pairs(given.pairs, templates)  # checked before any embedding
    features, embedded = embed_files(checkpoint, templates.images, embedding)
    ids, pooled = pool(np.asarray(features, np.float64), templates)
    scores = score_template_pairs(ids, pooled, first, second)
    table = pd.DataFrame({"template1": first, "template2": second, "label": labels, "score": scores})
    return ScoresFile(scores, labels, None, "cosine"), table, (len(set(templates.images)), embedded)


def evaluate(
    *,
    checkpoint: Path | None = None,
    pairs: PairsInput | None = None,
    embedding: EmbedOptions | None = None,
    from_scores: Path | None = None,
    bin_set: Path | None = None,
    templates: TemplatePairs | None = None,
    folds: int = 10,
    report: Path | None = None,
    plot: Path | None = None,
    scores: Path | None = None,
    force: bool = False,
) -> VerificationReport:
    """`facecli eval`: verification metrics for a model on a pairs file, an insightface .bin set or IJB-style
    template pairs, or for a scores CSV."""
    if folds < 2:
        raise FaceCliError(f"--folds must be at least 2, got {folds}")
    if templates is not None:
        if pairs is not None or from_scores is not None or bin_set is not None:
            raise FaceCliError("--templates and --template-pairs are the input; drop --pairs, --from-scores and --bin")
        if checkpoint is None or embedding is None:
            raise FaceCliError("eval --templates needs --checkpoint")
        check_writable(report, plot, scores, force=force)
        data, table, counted = _score_templates(checkpoint, templates, embedding)
        result = report_scores(data, folds=folds, report=report, plot=plot, counted=counted)
        if scores:
            _write_csv(table, scores)  # readable by --from-scores (score,label columns)
        return result
    if bin_set is not None:
        if pairs is not None or from_scores is not None or scores is not None:
            raise FaceCliError("--bin holds its own pairs; drop --pairs, --from-scores and --scores")
        if checkpoint is None or embedding is None:
            raise FaceCliError("eval --bin needs --checkpoint")
        check_writable(report, plot, force=force)
        from facecli.verification.bin_eval import score_bin

        data, embedded = score_bin(checkpoint, bin_set, embedding)
        return report_scores(data, folds=folds, report=report, plot=plot, counted=(embedded, embedded))
    if from_scores is not None:
        if scores is not None:
            raise FaceCliError("--scores writes the scores of embedded pairs; with --from-scores they are the input")
        if checkpoint is not None or pairs is not None:
            raise FaceCliError("--from-scores evaluates a scores file; drop --checkpoint and --pairs")
    elif checkpoint is None or pairs is None or embedding is None:
        raise FaceCliError("eval needs --checkpoint and --pairs, or --from-scores FILE")
    check_writable(report, plot, scores, force=force)
    if from_scores is not None:
        return report_scores(read_scores(from_scores), folds=folds, report=report, plot=plot)
    scored = score_pairs(checkpoint, check_pairs(pairs), pairs.metric, embedding)
    counted = (scored.unique_images, scored.images_embedded)
    result = report_scores(_as_scores_file(scored), folds=folds, report=report, plot=plot, counted=counted)
    if scores:
        table = scored.pairs.table.copy()
        table[column_of_metric(scored.metric)] = to_display(scored.scores, scored.metric)  # readable by --from-scores
        if scored.pairs.folds is not None:
            table["fold"] = scored.pairs.folds
        _write_csv(table, scores)
    return result


def _stored_threshold(checkpoint: Path, pairs: PairsInput, embedding: EmbedOptions) -> float:
    config = model_config(checkpoint, embedding.backend)
    if config.threshold is None:
        raise FaceCliError(
            f"{checkpoint} has no calibrated threshold: pass --threshold T, or run "
            "'facecli sweep --save-threshold' on labelled pairs first"
        )
    if config.threshold_metric != pairs.metric:
        raise FaceCliError(f"the stored threshold is for --metric {config.threshold_metric}; use that metric")
    return config.threshold


def predict(
    *,
    checkpoint: Path,
    pairs: PairsInput,
    embedding: EmbedOptions,
    out: Path,
    threshold: float | None = None,
    skip_missing: bool = False,
    force: bool = False,
) -> pd.DataFrame:
    """`facecli predict`: input rows in order plus `score` and `prediction` (1 = same), written to `out`."""
    check_writable(out, force=force)
    if threshold is None:
        threshold = _stored_threshold(checkpoint, pairs, embedding)
    scored = score_pairs(checkpoint, check_pairs(pairs, skip_missing), pairs.metric, embedding)
    shown = to_display(scored.scores, scored.metric)
    same = scored.scores > to_display(threshold, scored.metric)
    table = scored.pairs.table.copy()
    table["score"] = np.round(shown, 6)
    table["prediction"] = pd.array(np.where(np.isnan(shown), pd.NA, same.astype(int)), dtype="Int64")
    _write_csv(table, out)
    return table


@dataclass(frozen=True)
class Selection:
    """How sweep picks its threshold: the best accuracy or F1, or the best TAR at FAR <= a rate."""

    rule: str
    far: float | None = None

    @classmethod
    def parse(cls, text: str) -> Selection:
        """`accuracy`, `f1` or `far=<rate>`; anything else is a one-line error."""
        if text in ("accuracy", "f1"):
            return cls(text)
        if text.startswith("far="):
            try:
                far = float(text[4:])
            except ValueError:
                raise FaceCliError(f"--select {text}: expected far=<number>, for example far=1e-3") from None
            if not 0 < far <= 1:
                raise FaceCliError(f"--select {text}: the FAR must be in (0, 1]")
            return cls("far", far)
        raise FaceCliError(f"unknown --select '{text}' (choose from: {SELECTIONS})")

    def pick(self, table: pd.DataFrame) -> int:
        """The row of the chosen threshold."""
        if self.far is None:
            return int(table[self.rule].to_numpy().argmax())
        allowed = np.flatnonzero(table["far"].to_numpy() <= self.far)
        if not len(allowed):
            raise FaceCliError(f"no threshold reaches FAR <= {self.far:g} on these pairs")
        return int(allowed[table["tar"].to_numpy()[allowed].argmax()])


@dataclass
class SweepResult:
    """Rates per threshold and the threshold chosen by the selection rule."""

    table: pd.DataFrame
    chosen: float
    select: str


def _check_range(start: float | None, stop: float | None, step: float | None) -> None:
    if step is not None and not step > 0:
        raise FaceCliError(f"--step must be positive, got {step:g}")
    if start is not None and stop is not None and stop < start:
        raise FaceCliError(f"--stop {stop:g} is below --start {start:g}")


def rates_table(scored: ScoredPairs, start: float | None, stop: float | None, step: float | None) -> pd.DataFrame:
    """Accuracy, precision, recall, F1, FAR, FRR and TAR at each threshold of the grid."""
    labels = _labelled(scored)
    shown = to_display(scored.scores, scored.metric)
    lo, hi = (start if start is not None else shown.min()), (stop if stop is not None else shown.max())
    if hi < lo:
        raise FaceCliError(f"the thresholds run from {lo:g} to {hi:g}: set --start below --stop")
    grid = np.linspace(lo, hi, 201) if step is None else np.arange(lo, hi + step / 2, step)
    c = counts(scored.scores, labels, to_display(grid, scored.metric))
    precision = np.divide(c.tp, c.tp + c.fp, out=np.ones(len(grid)), where=(c.tp + c.fp) > 0)
    recall = c.tar
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(len(grid)), where=(precision + recall) > 0)
    return pd.DataFrame(
        {
            "threshold": grid,
            "accuracy": c.accuracy,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "far": c.far,
            "frr": 1 - recall,
            "tar": recall,
        }
    )


def sweep(
    *,
    checkpoint: Path,
    pairs: PairsInput,
    embedding: EmbedOptions,
    start: float | None = None,
    stop: float | None = None,
    step: float | None = None,
    select: str = "accuracy",
    out: Path | None = None,
    plot: Path | None = None,
    save_threshold: bool = False,
    force: bool = False,
) -> SweepResult:
    """`facecli sweep`: rates per threshold, the chosen threshold, optionally saved into the model file."""
    selection = Selection.parse(select)
    _check_range(start, stop, step)
    check_writable(out, plot, force=force)
    scored = score_pairs(checkpoint, check_pairs(pairs), pairs.metric, embedding)
    table = rates_table(scored, start, stop, step)
    chosen = float(table["threshold"].iloc[selection.pick(table)])
    if out:
        _write_csv(table, out)
    if plot:
        from facecli.plots import sweep_plot

        sweep_plot(table, chosen, plot)
    if save_threshold:
        save_model_threshold(checkpoint, embedding.backend, chosen, scored.metric)
    return SweepResult(table, chosen, select)
