"""`facecli eval`, `predict` and `sweep`: score pairs with a model (or read scores) and measure them."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from facecli.data.pairs import Pairs, PairsFormat, missing_images, read_pairs, resolve_images
from facecli.engine.backends import Backend, model_config, open_embedder
from facecli.engine.backends import save_threshold as save_model_threshold
from facecli.engine.cache import EmbeddingCache, file_hash, image_key
from facecli.engine.embed import embed_images
from facecli.engine.metrics import VerificationReport, counts, to_display, verification_report
from facecli.errors import FaceCliError
from facecli.fileio import atomic_path, check_writable, write_text_atomic
from facecli.runtime import Runtime

Metric = Literal["cosine", "euclidean"]
MAX_LISTED = 10
MEMMAP_ROWS = 20_000  # more embeddings than this live in a memory-mapped file, not on the heap
SCORE_BLOCK = 8192  # pairs scored per block


@dataclass
class EmbedOptions:
    """How to turn images into embeddings."""

    runtime: Runtime
    backend: Backend = "torch"
    batch_size: int = 64
    workers: int | None = None
    flip: bool = False
    cache_dir: Path | None = None


@dataclass
class ScoredPairs:
    """Pairs with a 'higher means same' score each (NaN where an image was missing and skipped)."""

    pairs: Pairs
    scores: np.ndarray
    metric: str
    images_embedded: int = 0
    unique_images: int = 0


def _embeddings(checkpoint: Path, files: list[Path], opts: EmbedOptions) -> tuple[np.ndarray, int]:
    """Embeddings of `files` (each once), from the cache where possible; returns them and the count embedded."""
    model = open_embedder(checkpoint, opts.backend, opts.runtime)
    cache = EmbeddingCache(opts.cache_dir, file_hash(checkpoint)) if opts.cache_dir else None
    keys = [image_key(f, opts.flip) for f in files] if cache else []
    known = cache.get(keys) if cache else {}
    todo = [i for i, k in enumerate(keys) if k not in known] if cache else list(range(len(files)))
    out = embedding_array(len(files), model.config.embedding_size)
    for i, k in enumerate(keys):
        if k in known:
            out[i] = known[k]
    if todo and len(todo) == len(files):  # nothing cached: embed straight into `out`, no second copy
        embed_images(model, files, opts.batch_size, opts.workers, opts.flip, out)
    elif todo:
        out[todo] = embed_images(model, [files[i] for i in todo], opts.batch_size, opts.workers, opts.flip)
    if todo and cache:
        cache.put([keys[i] for i in todo], out[todo])
    return out, len(todo)


def embedding_array(rows: int, size: int) -> np.ndarray:
    """A float32 (rows, size) array; past MEMMAP_ROWS rows, memory-mapped on an anonymous temporary file."""
    if rows <= MEMMAP_ROWS:
        return np.empty((rows, size), np.float32)
    with tempfile.TemporaryFile(prefix="facecli-embeddings-") as backing:  # unlinked at once; the map keeps it
        return np.memmap(backing, np.float32, "w+", shape=(rows, size))


@dataclass
class PairsInput:
    """Where the pairs are and how to read and score them."""

    pairs: Path
    root: Path
    metric: Metric = "cosine"
    fmt: PairsFormat = "auto"
    columns: list[str] | None = None
    allow_outside_root: bool = False


@dataclass
class CheckedPairs:
    """A parsed pairs file whose images were located (missing ones listed in `missing`)."""

    pairs: Pairs
    resolved: dict[str, Path]
    missing: list[str]

    @property
    def present(self) -> list[str]:
        """Distinct images that exist, in first-use order."""
        absent = set(self.missing)
        return [image for image in self.pairs.images if image not in absent]


def check_pairs(source: PairsInput, skip_missing: bool = False) -> CheckedPairs:
    """Parse a pairs file and locate its images; every missing image is listed unless `skip_missing`."""
    if source.metric not in ("cosine", "euclidean"):
        raise FaceCliError(f"unknown metric '{source.metric}' (choose from: cosine, euclidean)")
    pairs = read_pairs(source.pairs, source.fmt, source.columns)
    resolved = resolve_images(pairs, source.root, source.allow_outside_root)
    missing = missing_images(resolved)
    if missing and not skip_missing:
        shown = ", ".join(missing[:MAX_LISTED]) + (
            f" and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
        )
        raise FaceCliError(f"{pairs.source}: {len(missing)} image(s) not found under {source.root}: {shown}")
    return CheckedPairs(pairs, resolved, missing)


def score_checked(
    checked: CheckedPairs, embed: Callable[[list[Path]], tuple[np.ndarray, int]], metric: Metric
) -> ScoredPairs:
    """Embed each distinct present image once with `embed` and score every pair (NaN where one is missing)."""
    pairs, present = checked.pairs, checked.present
    embeddings, embedded = embed([checked.resolved[i] for i in present])
    row = {image: n for n, image in enumerate(present)}
    scores = np.full(len(pairs), np.nan)
    left = np.array([row.get(x, -1) for x in pairs.left], np.int64)
    right = np.array([row.get(x, -1) for x in pairs.right], np.int64)
    for start in range(0, len(pairs), SCORE_BLOCK):  # in blocks: never all pairs' embeddings at once
        i, j = left[start : start + SCORE_BLOCK], right[start : start + SCORE_BLOCK]
        ok = (i >= 0) & (j >= 0)
        a, b = embeddings[i[ok]], embeddings[j[ok]]
        block = scores[start : start + SCORE_BLOCK]
        block[ok] = (a * b).sum(1) if metric == "cosine" else -np.linalg.norm(a - b, axis=1)
    return ScoredPairs(pairs, scores, metric, embedded, len(present))


def read_scores(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, str]:
    """A `distance,label` or `score,label` CSV (optional `fold`): scores (higher = same), labels, folds, metric."""
    path = Path(path)
    try:
        table = pd.read_csv(path, encoding="utf-8-sig")
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise FaceCliError(f"{path}: not a readable CSV ({' '.join(str(exc).split())})") from None
    columns = set(table.columns)
    if "label" not in columns or not ({"distance", "score"} & columns):
        raise FaceCliError(
            f"{path} line 1: expected columns distance,label or score,label (found {', '.join(table.columns)})"
        )
    kind = "distance" if "distance" in columns else "score"
    values = pd.to_numeric(table[kind], errors="coerce").to_numpy(float)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise FaceCliError(f"{path} line {bad[0] + 2}: {kind} '{table[kind][bad[0]]}' is not a number")
    labels = table["label"].astype(str).str.strip()
    bad = np.flatnonzero(~labels.isin(["0", "1"]).to_numpy())
    if len(bad):
        raise FaceCliError(f"{path} line {bad[0] + 2}: label must be 0 or 1, got '{labels[bad[0]]}'")
    folds = table["fold"].to_numpy() if "fold" in columns else None
    return (-values if kind == "distance" else values), labels.astype(int).to_numpy(), folds, kind


def _labelled(scored: ScoredPairs) -> np.ndarray:
    if scored.pairs.labels is None:
        raise FaceCliError(f"{scored.pairs.source}: has no labels (or identity columns) to evaluate against")
    if np.isnan(scored.scores).any():
        raise FaceCliError("cannot evaluate with missing images; remove those pairs")
    return scored.pairs.labels


def report_scores(
    scored: ScoredPairs | None = None,
    from_scores: str | os.PathLike[str] | None = None,
    n_folds: int = 10,
    report_path: str | os.PathLike[str] | None = None,
    plot_path: str | os.PathLike[str] | None = None,
    scores_path: str | os.PathLike[str] | None = None,
) -> VerificationReport:
    """The LFW protocol (+ AUC, EER, TAR@FAR) on scored pairs or on a scores CSV; writes the asked outputs."""
    if from_scores is not None:
        scores, labels, folds, metric = read_scores(from_scores)
    elif scored is not None:
        scores, labels, folds, metric = scored.scores, _labelled(scored), scored.pairs.folds, scored.metric
    else:
        raise FaceCliError("evaluate needs scored pairs or --from-scores FILE")
    if labels.min() == labels.max():
        raise FaceCliError("evaluation needs both genuine and impostor pairs")
    if folds is None and len(scores) < n_folds:
        raise FaceCliError(f"{len(scores)} pairs are too few for {n_folds} folds (set --folds)")
    report = verification_report(scores, labels, metric, folds, n_folds)
    if scored is not None:
        report.images, report.forward_passes = scored.unique_images, scored.images_embedded
    if report_path:
        write_text_atomic(report_path, json.dumps(dataclasses.asdict(report), indent=2) + "\n")
    if plot_path:
        from facecli.engine.plots import roc_and_histograms

        name = "distance" if metric in ("euclidean", "distance") else "similarity"
        roc_and_histograms(scores, labels, report.best_threshold, name, plot_path)
    if scores_path and scored is not None:
        table = scored.pairs.table.copy()
        table["score"] = to_display(scores, metric)
        if folds is not None:
            table["fold"] = folds
        _write_csv(table, scores_path)
    return report


def _write_csv(table: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def predict_table(
    scored: ScoredPairs,
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    threshold: float | None = None,
    backend: Backend = "torch",
) -> pd.DataFrame:
    """Input rows in order plus `score` and `prediction` (1 = same) at the threshold; writes `out`."""
    config = model_config(checkpoint, backend)
    if threshold is None:
        if config.threshold is None:
            raise FaceCliError(
                f"{checkpoint} has no calibrated threshold: pass --threshold T, or run "
                "'facecli sweep --save-threshold' on labelled pairs first"
            )
        if config.threshold_metric != scored.metric:
            raise FaceCliError(f"the stored threshold is for --metric {config.threshold_metric}; use that metric")
        threshold = config.threshold
    shown = to_display(scored.scores, scored.metric)
    same = scored.scores > to_display(threshold, scored.metric)
    table = scored.pairs.table.copy()
    table["score"] = np.round(shown, 6)
    table["prediction"] = pd.array(np.where(np.isnan(shown), pd.NA, same.astype(int)), dtype="Int64")
    _write_csv(table, out)
    return table


@dataclass
class SweepResult:
    """Rates per threshold and the threshold chosen by the selection rule."""

    table: pd.DataFrame
    chosen: float
    select: str


def _select(table: pd.DataFrame, select: str) -> int:
    if select in ("accuracy", "f1"):
        return int(table[select].to_numpy().argmax())
    if select.startswith("far="):
        try:
            target = float(select[4:])
        except ValueError:
            raise FaceCliError(f"--select {select}: expected far=<number>, for example far=1e-3") from None
        allowed = np.flatnonzero(table["far"].to_numpy() <= target)
        if not len(allowed):
            raise FaceCliError(f"no threshold reaches FAR <= {target:g} on these pairs")
        return int(allowed[table["tar"].to_numpy()[allowed].argmax()])
    raise FaceCliError(f"unknown --select '{select}' (choose from: accuracy, f1, far=<rate>)")


def sweep_table(
    scored: ScoredPairs,
    start: float | None = None,
    stop: float | None = None,
    step: float | None = None,
    select: str = "accuracy",
    out: str | os.PathLike[str] | None = None,
    plot_path: str | os.PathLike[str] | None = None,
    save_threshold: str | os.PathLike[str] | None = None,
    backend: Backend = "torch",
) -> SweepResult:
    """Accuracy, precision, recall, F1, FAR, FRR and TAR at each threshold; the chosen one saved on request."""
    labels = _labelled(scored)
    shown = to_display(scored.scores, scored.metric)
    lo, hi = (start if start is not None else shown.min()), (stop if stop is not None else shown.max())
    if step is None:
        grid = np.linspace(lo, hi, 201)
    else:
        if step <= 0 or hi < lo:
            raise FaceCliError("--step must be positive and --stop at least --start")
        grid = np.arange(lo, hi + step / 2, step)
    c = counts(scored.scores, labels, to_display(grid, scored.metric))
    precision = np.divide(c.tp, c.tp + c.fp, out=np.ones(len(grid)), where=(c.tp + c.fp) > 0)
    recall = c.tar
    table = pd.DataFrame(
        {
            "threshold": grid,
            "accuracy": c.accuracy,
            "precision": precision,
            "recall": recall,
            "f1": np.divide(
                2 * precision * recall, precision + recall, out=np.zeros(len(grid)), where=(precision + recall) > 0
            ),
            "far": c.far,
            "frr": 1 - recall,
            "tar": recall,
        }
    )
    chosen = float(grid[_select(table, select)])
    if out:
        _write_csv(table, out)
    if plot_path:
        from facecli.engine.plots import sweep_plot

        sweep_plot(table, chosen, plot_path)
    if save_threshold:
        save_model_threshold(save_threshold, backend, chosen, scored.metric)
    return SweepResult(table, chosen, select)


def _score(checkpoint: Path, source: PairsInput, opts: EmbedOptions, skip_missing: bool = False) -> ScoredPairs:
    checked = check_pairs(source, skip_missing)
    return score_checked(checked, lambda files: _embeddings(checkpoint, files, opts), source.metric)


def evaluate(
    checkpoint: Path | None,
    source: PairsInput | None,
    opts: EmbedOptions | None,
    from_scores: Path | None = None,
    n_folds: int = 10,
    report_path: Path | None = None,
    plot_path: Path | None = None,
    scores_path: Path | None = None,
    force: bool = False,
) -> VerificationReport:
    """`facecli eval`: verification metrics for a model on a pairs file, or for a scores CSV."""
    check_writable(report_path, plot_path, scores_path, force=force)
    if from_scores is not None:
        return report_scores(None, from_scores, n_folds, report_path, plot_path)
    if checkpoint is None or source is None or opts is None:
        raise FaceCliError("eval needs --checkpoint and --pairs (or --from-scores FILE)")
    scored = _score(checkpoint, source, opts)
    return report_scores(scored, None, n_folds, report_path, plot_path, scores_path)


def predict(
    checkpoint: Path,
    source: PairsInput,
    opts: EmbedOptions,
    out: Path,
    threshold: float | None = None,
    skip_missing: bool = False,
    force: bool = False,
) -> pd.DataFrame:
    """`facecli predict`: one scored, thresholded row per input pair, written to `out`."""
    check_writable(out, force=force)
    return predict_table(_score(checkpoint, source, opts, skip_missing), checkpoint, out, threshold, opts.backend)


def sweep(
    checkpoint: Path,
    source: PairsInput,
    opts: EmbedOptions,
    start: float | None = None,
    stop: float | None = None,
    step: float | None = None,
    select: str = "accuracy",
    out: Path | None = None,
    plot_path: Path | None = None,
    save_threshold: bool = False,
    force: bool = False,
) -> SweepResult:
    """`facecli sweep`: rates per threshold, the chosen threshold, optionally saved into the checkpoint."""
    check_writable(out, plot_path, force=force)
    scored = _score(checkpoint, source, opts)
    return sweep_table(
        scored, start, stop, step, select, out, plot_path, checkpoint if save_threshold else None, opts.backend
    )
