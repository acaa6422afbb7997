"""Pairs -> scores: parse and locate a pairs file, embed each distinct image once, score every pair."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecli.data.pairs import Pairs, PairsFormat, missing_images, read_pairs, resolve_images
from facecli.embed import Embedded, EmbedOptions, embed_files
from facecli.errors import FaceCliError, unknown_choice
from facecli.verification.metrics import Metric, check_metric

MAX_LISTED = 10
log = logging.getLogger(__name__)
SCORE_BLOCK = 8192  # pairs scored per block
PAIRS_FORMATS = ("auto", "lfw", "paths", "csv")


@dataclass
class PairsInput:
    """Where the pairs are and how to read and score them; checked when made."""

    pairs: Path
    root: Path | None = None  # None: where the pairs' names resolve (beside the file, its lfw/, or here)
    metric: Metric = "cosine"
    fmt: PairsFormat = "auto"
    columns: list[str] | None = None
    allow_outside_root: bool = False

    def __post_init__(self) -> None:
        check_metric(self.metric)
        if self.fmt not in PAIRS_FORMATS:
            raise unknown_choice("pairs format", self.fmt, PAIRS_FORMATS)
        if self.columns is not None and len(self.columns) not in (2, 3):
            raise FaceCliError(f"--columns takes image1,image2[,label]; got {','.join(self.columns)}")


@dataclass
class ScoredPairs:
    """Pairs with a 'higher means same' score each (NaN where an image was missing and skipped)."""

    pairs: Pairs
    scores: np.ndarray
    metric: Metric
    images_embedded: int = 0
    unique_images: int = 0
    quality: np.ndarray | None = None  # per pair, the lower of its two faces' quality (models with a quality score)


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
    pairs = read_pairs(source.pairs, source.fmt, source.columns)
    root = source.root if source.root is not None else locate_root(pairs, source.allow_outside_root, skip_missing)
    resolved = resolve_images(pairs, root, source.allow_outside_root)
    missing = missing_images(resolved)
    if missing and not skip_missing:
        shown = ", ".join(missing[:MAX_LISTED]) + (
            f" and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
        )
        raise FaceCliError(f"{pairs.source}: {len(missing)} image(s) not found under {root}: {shown}")
    return CheckedPairs(pairs, resolved, missing)


def locate_root(pairs: Pairs, allow_outside_root: bool = False, partly: bool = False) -> Path:
    """The folder the pairs' image names resolve under: beside the pairs file, its lfw/ subfolder (the FaceNet
    ports' layout) or the working folder; `partly`: the one where the fewest are missing. Said in one line."""
    tried = list(dict.fromkeys(p for p in (pairs.source.parent, pairs.source.parent / "lfw", Path(".")) if p.is_dir()))
    missing = {}
    for folder in tried:
        try:
            missing[folder] = len(missing_images(resolve_images(pairs, folder, allow_outside_root)))
        except FaceCliError:  # a name that leaves this folder
            continue
    whole = [folder for folder, count in missing.items() if count == 0]
    distinct = list(dict.fromkeys(folder.resolve() for folder in whole))
    images = len(pairs.images)
    if len(distinct) > 1:
        raise FaceCliError(
            f"{pairs.source}: its image names resolve under {' and under '.join(map(str, whole))}; choose with --root"
        )
    if whole:
        found = whole[0]
    elif partly and missing and min(missing.values()) < images:
        found = min(missing, key=missing.get)
    else:
        counts = ", ".join(f"{folder} ({missing.get(folder, images)} of {images} missing)" for folder in tried)
        raise FaceCliError(f"{pairs.source}: its image names resolve under none of {counts}; pass --root")
    log.info(f"root: {found} (where {pairs.source.name}'s image names resolve; --root to choose)")
    return found


def score_checked(checked: CheckedPairs, embed: Callable[[list[Path]], Embedded], metric: Metric) -> ScoredPairs:
    """Embed each distinct present image once with `embed` and score every pair (NaN where one is missing)."""
    pairs, present = checked.pairs, checked.present
    found = embed([checked.resolved[i] for i in present])
    embeddings = found.vectors
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
    quality = None
    if found.quality is not None:  # a pair is as good as its worse face
        quality = np.full(len(pairs), np.nan)
        ok = (left >= 0) & (right >= 0)
        quality[ok] = np.minimum(found.quality[left[ok]], found.quality[right[ok]])
    return ScoredPairs(pairs, scores, metric, found.embedded, len(present), quality)


def score_pairs(checkpoint: Path, checked: CheckedPairs, metric: Metric, opts: EmbedOptions) -> ScoredPairs:
    """Score checked pairs with a model file."""
    return score_checked(checked, lambda files: embed_files(checkpoint, files, opts), metric)


def labelled(scored: ScoredPairs) -> np.ndarray:
    """The pairs' labels, for measuring; a one-line error where there are none or images are missing."""
    if scored.pairs.labels is None:
        raise FaceCliError(f"{scored.pairs.source}: has no labels (or identity columns) to evaluate against")
    if np.isnan(scored.scores).any():
        raise FaceCliError("cannot evaluate with missing images; remove those pairs")
    return scored.pairs.labels
