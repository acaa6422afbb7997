"""Validation from the training data itself, where the user gives none: some identities are held back from
training and their images paired (half genuine, in folds), so the run can keep its best model, stop on a
plateau and calibrate the decision threshold on people it never trained on."""

from __future__ import annotations

import dataclasses
import math
import os
import random
from pathlib import Path

import numpy as np
import pandas as pd

from facecli.data.pairs_writer import make_pairs
from facecli.data.training_set import TrainingSet
from facecli.errors import FaceCliError
from facecli.fileio import write_csv_atomic

HOLDOUT_FILE = "val_pairs.csv"
# Every genuine pair the held-back images make, and as many impostor pairs, up to MOST_PAIRS in all: the
# images are embedded once a validation whatever the pairs, and 360 pairs of 4 identities judge the epochs
# more steadily than the 80 drawn before (RESULTS.md, "Which epoch a run keeps").
MOST_PAIRS = 1000
FEWER = 0.8  # how much fewer pairs a fold is asked for where its identities cannot make that many


def hold_back(data: TrainingSet, count: int, seed: int) -> tuple[TrainingSet, pd.DataFrame, Path]:
    """The training set without `count` identities (drawn by `seed` among those with 2+ images), pairs of the
    held-back images as a table of imageA, imageB, label and fold, and the folder their paths start from."""
    counts = np.bincount(data.labels, minlength=data.num_classes)
    eligible = [c for c in range(data.num_classes) if counts[c] >= 2]
    held = sorted(random.Random(seed).sample(eligible, count))
    images = {data.classes[c]: [data.paths[i] for i in np.flatnonzero(data.labels == c)] for c in held}
    folds = min(10, count // 2)
    genuine = sum(math.comb(len(files), 2) for files in images.values())
    drawn = _as_many_pairs_as_they_have(images, min(MOST_PAIRS, 2 * genuine), folds, seed)
    pairs = [
        (Path(p.image_a).resolve(), Path(p.image_b).resolve(), int(p.genuine), f)
        for f, fold in enumerate(drawn)
        for p in fold
    ]
    root = Path(os.path.commonpath([image.parent for a, b, _, _ in pairs for image in (a, b)]))
    rows = [(a.relative_to(root).as_posix(), b.relative_to(root).as_posix(), label, f) for a, b, label, f in pairs]
    return _without(data, held), pd.DataFrame(rows, columns=["imageA", "imageB", "label", "fold"]), root


def _as_many_pairs_as_they_have(images: dict[str, list[Path]], total: int, folds: int, seed: int) -> list:
    """Pairs in `folds` folds, `total` of them or, where a fold's identities have too few images for its share
    of distinct genuine pairs, fewer (a fifth fewer a try)."""
    per_fold = max(1, total // (2 * folds))
    while True:
        try:
            return make_pairs(images, per_fold * 2 * folds, folds, seed)
        except FaceCliError:
            if per_fold == 1:
                raise
            per_fold = int(per_fold * FEWER)


def write_holdout(table: pd.DataFrame, run_dir: Path) -> Path:
    """The held-back pairs as a CSV in the run folder (what `facecli eval --pairs` reads too)."""
    path = run_dir / HOLDOUT_FILE
    write_csv_atomic(path, table)
    return path


def _without(data: TrainingSet, held: list[int]) -> TrainingSet:
    """`data` less the identities `held`, relabelled 0..C-1 in the same order."""
    keep = np.isin(data.labels, held, invert=True)
    kept_classes = [c for c in range(data.num_classes) if c not in set(held)]
    relabel = np.full(data.num_classes, -1, np.int64)
    relabel[kept_classes] = np.arange(len(kept_classes))
    indices = np.flatnonzero(keep)
    return dataclasses.replace(
        data,
        paths=[data.paths[i] for i in indices],
        labels=relabel[data.labels[indices]],
        classes=[data.classes[c] for c in kept_classes],
        offsets=[data.offsets[i] for i in indices] if data.offsets is not None else None,
    )
