"""`facecli predict` and `sweep`: every option checked first, then pairs scored once and measured."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from facecli.embed import EmbedOptions
from facecli.embed.backends import model_config
from facecli.embed.backends import save_threshold as save_model_threshold
from facecli.errors import FaceCliError
from facecli.fileio import check_plot_file, check_writable, write_csv_atomic
from facecli.numbers import FINITE, POSITIVE, check_number, check_threshold
from facecli.verification.metrics import counts, to_display
from facecli.verification.scoring import PairsInput, ScoredPairs, check_pairs, labelled, score_pairs

SELECTIONS = "accuracy, f1, far=<rate>"


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
    check_writable(out, force=force, inputs=(checkpoint, pairs.pairs))
    if threshold is None:
        threshold = _stored_threshold(checkpoint, pairs, embedding)
    check_threshold(threshold, pairs.metric)
    checked = check_pairs(pairs, skip_missing)
    if not checked.present:
        missing = len(checked.missing)
        raise FaceCliError(f"{pairs.pairs}: none of its {missing} images was found (--root?); nothing to score")
    scored = score_pairs(checkpoint, checked, pairs.metric, embedding)
    shown = to_display(scored.scores, scored.metric)
    same = scored.scores > to_display(threshold, scored.metric)
    table = scored.pairs.table.copy()
    table["score"] = np.round(shown, 6)
    table["prediction"] = pd.array(np.where(np.isnan(shown), pd.NA, same.astype(int)), dtype="Int64")
    write_csv_atomic(out, table)
    return table


DEFAULT_SELECTION = "accuracy"  # sweep's rule for the threshold when none is asked for


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

    def check_measurable(self, labels: np.ndarray | None) -> None:
        """Refuse a FAR too small for the impostor pairs to measure (as eval's TAR@FAR rows do): at 30 impostors
        FAR 1e-9 is only 'no impostor above the threshold', and a threshold saved for it would claim more."""
        impostors = 0 if labels is None else int((labels == 0).sum())
        if self.far is not None and labels is not None and impostors < round(1 / self.far):
            raise FaceCliError(
                f"--select far={self.far:g} needs at least {round(1 / self.far)} impostor pairs; these "
                f"pairs have {impostors} (the smallest FAR they measure is {1 / max(impostors, 1):.3g})"
            )

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


MOST_THRESHOLDS = 100_000  # rows of a sweep table: ~10 MB; --step 1e-9 once asked for 24 GB and more


def _check_range(start: float | None, stop: float | None, step: float | None) -> None:
    for name, value in (("--start", start), ("--stop", stop)):
        if value is not None:
            check_number(name, value, FINITE)
    if step is not None:
        check_number("--step", step, POSITIVE)
    if start is not None and stop is not None:
        _check_grid(start, stop, step)  # before any image is embedded, where the range is given
    if start is not None and stop is not None and stop < start:
        raise FaceCliError(f"--stop {stop:g} is below --start {start:g}")


def _check_grid(lo: float, hi: float, step: float | None) -> None:
    if step is not None and (hi - lo) / step > MOST_THRESHOLDS:
        raise FaceCliError(
            f"--step {step:g} from {lo:g} to {hi:g} makes {(hi - lo) / step:.3g} thresholds (at most "
            f"{MOST_THRESHOLDS}); take a larger --step or a narrower --start/--stop"
        )


def rates_table(scored: ScoredPairs, start: float | None, stop: float | None, step: float | None) -> pd.DataFrame:
    """Accuracy, precision, recall, F1, FAR, FRR and TAR at each threshold of the grid."""
    labels = labelled(scored)
    shown = to_display(scored.scores, scored.metric)
    lo, hi = (start if start is not None else shown.min()), (stop if stop is not None else shown.max())
    if hi < lo:
        raise FaceCliError(f"the thresholds run from {lo:g} to {hi:g}: set --start below --stop")
    _check_grid(lo, hi, step)
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


def threshold_table(
    scored: ScoredPairs,
    selection: Selection,
    start: float | None = None,
    stop: float | None = None,
    step: float | None = None,
) -> tuple[pd.DataFrame, float]:
    """The rates per threshold of scored pairs and the threshold `selection` picks from them."""
    table = rates_table(scored, start, stop, step)
    return table, float(table["threshold"].iloc[selection.pick(table)])


def sweep(
    *,
    checkpoint: Path,
    pairs: PairsInput,
    embedding: EmbedOptions,
    start: float | None = None,
    stop: float | None = None,
    step: float | None = None,
    select: str = DEFAULT_SELECTION,
    out: Path | None = None,
    plot: Path | None = None,
    save_threshold: bool = False,
    force: bool = False,
) -> SweepResult:
    """`facecli sweep`: rates per threshold, the chosen threshold, optionally saved into the model file."""
    selection = Selection.parse(select)
    _check_range(start, stop, step)
    check_plot_file(plot)
    check_writable(out, plot, force=force, inputs=(checkpoint, pairs.pairs))
    checked = check_pairs(pairs)
    selection.check_measurable(checked.pairs.labels)
    scored = score_pairs(checkpoint, checked, pairs.metric, embedding)
    table, chosen = threshold_table(scored, selection, start, stop, step)
    if out:
        write_csv_atomic(out, table)
    if plot:
        from facecli.plots import sweep_plot

        sweep_plot(table, chosen, plot)
    if save_threshold:
        save_model_threshold(checkpoint, embedding.backend, chosen, scored.metric)
    return SweepResult(table, chosen, select)
