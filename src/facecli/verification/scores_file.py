"""Read a scores CSV (`distance,label` or `score,label`, optional `fold`), as `eval --from-scores` takes it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from facecli.data.pairs import integer_column
from facecli.errors import FaceCliError
from facecli.verification.metrics import SCORE_COLUMNS, Metric, metric_of_column


@dataclass
class ScoresFile:
    """Scores (higher means same), labels, folds when the file has them, and the metric they are in."""

    scores: np.ndarray
    labels: np.ndarray
    folds: np.ndarray | None
    metric: Metric
    quality: np.ndarray | None = None  # per pair, the lower of its faces' quality (a model with a quality score)


def read_scores(path: str | os.PathLike[str]) -> ScoresFile:
    """Parse a scores CSV; every malformed value is a one-line error naming the file and line."""
    path = Path(path)
    try:
        table = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise FaceCliError(f"{path}: not a readable CSV ({' '.join(str(exc).split())})") from None
    table.columns = [str(c).strip() for c in table.columns]
    columns = set(table.columns)
    kind = next((c for c in SCORE_COLUMNS if c in columns), None)
    if "label" not in columns or kind is None:
        raise FaceCliError(
            f"{path} line 1: expected columns distance,label or score,label (found {', '.join(table.columns)})"
        )
    values = pd.to_numeric(table[kind].str.strip(), errors="coerce").to_numpy(float)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise FaceCliError(f"{path} line {bad[0] + 2}: {kind} '{table[kind].iloc[bad[0]]}' is not a number")
    labels = table["label"].str.strip()
    bad = np.flatnonzero(~labels.isin(["0", "1"]).to_numpy())
    if len(bad):
        raise FaceCliError(f"{path} line {bad[0] + 2}: label must be 0 or 1, got '{labels.iloc[bad[0]]}'")
    folds = integer_column(table, "fold", path) if "fold" in columns else None
    quality = None
    if "quality" in columns:
        quality = pd.to_numeric(table["quality"].str.strip(), errors="coerce").to_numpy(float)
        bad = np.flatnonzero(~np.isfinite(quality))
        if len(bad):
            raise FaceCliError(f"{path} line {bad[0] + 2}: quality '{table['quality'].iloc[bad[0]]}' is not a number")
    metric = metric_of_column(kind)
    scores = -values if metric == "euclidean" else values
    return ScoresFile(scores, labels.astype(int).to_numpy(), folds, metric, quality)
