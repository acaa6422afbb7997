"""The shape of training batches fitted to the data, once, before the sampler draws them: the batch shrinks to
data smaller than one batch, P x K draws only identities with a positive, fewer identities than P get more
images each, and packed data under DDP is split by rank. Every change is a note for the run log."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np

from facecli.errors import FaceCliError, unknown_choice

SamplerKind = Literal["pk", "random"]
SAMPLERS = get_args(SamplerKind)
BLOCK = 512  # records read one after another when the data is split by rank


@dataclass(frozen=True)
class BatchPlan:
    """How the sampler lays out batches; `notes` says where it differs from what was asked."""

    labels: np.ndarray
    kind: SamplerKind
    batch_size: int
    k: int  # images per identity in a P x K batch
    by_class: list[np.ndarray]  # the images of each identity drawn from
    rank: int = 0
    world_size: int = 1
    share: np.ndarray | None = None  # this rank's images in file order, where packed data is split by rank
    notes: list[str] = field(default_factory=list)

    @property
    def steps_per_epoch(self) -> int:
        """Batches per process per epoch: about every image once."""
        return len(self.labels) // (self.batch_size * self.world_size)


def plan_batches(
    labels: np.ndarray,
    batch_size: int,
    kind: SamplerKind = "pk",
    k: int = 4,
    rank: int = 0,
    world_size: int = 1,
    file_order: np.ndarray | None = None,
) -> BatchPlan:
    """Batches of `batch_size` (P x `k` for "pk") fitted to `labels`; `file_order` (the images in the order
    they lie in a packed file) splits the data by rank under DDP."""
    if kind not in SAMPLERS:
        raise unknown_choice("sampler", kind, SAMPLERS)
    labels = np.asarray(labels)
    notes: list[str] = []
    per_process = len(labels) // world_size
    shares = None
    if file_order is not None and world_size > 1:
        shares = [np.asarray(file_order)[r * per_process : (r + 1) * per_process] for r in range(world_size)]
        notes.append(
            f"the packed data is split by rank: each of the {world_size} processes reads its own "
            f"{per_process} consecutive records, in blocks of {BLOCK}"
        )
    if per_process < 2:
        raise FaceCliError(f"{len(labels)} training images cannot make batches on {world_size} process(es)")
    if batch_size > per_process:  # less data than one batch: the batch shrinks to the data
        fitted = per_process
        if kind == "pk":
            if per_process < 2 * k:
                k = max(1, per_process // 2)
            fitted -= per_process % k
        notes.append(f"batch {batch_size} is more than the {per_process} images per process: batch {fitted}")
        batch_size = fitted
    share = shares[rank] if shares is not None else None
    by_class = _classes(labels, share)
    if kind == "pk":
        if batch_size % k or batch_size < 2 * k:
            raise FaceCliError(f"--batch-size {batch_size} must be a multiple of --k {k} and at least 2 x {k}")
        by_class, p, k = _fit_pk(labels, by_class, batch_size, k, shares, notes)
        batch_size = p * k
    return BatchPlan(labels, kind, batch_size, k, by_class, rank, world_size, share, notes)


def _classes(labels: np.ndarray, images: np.ndarray | None) -> list[np.ndarray]:
    """The images of each identity (among `images`, or all), identities without images left out."""
    chosen = labels if images is None else labels[images]
    order = np.argsort(chosen, kind="stable")
    members = np.split(order, np.flatnonzero(np.diff(chosen[order])) + 1) if len(order) else []
    return [m if images is None else images[m] for m in members]


def _fit_pk(
    labels: np.ndarray,
    by_class: list[np.ndarray],
    batch_size: int,
    k: int,
    shares: list[np.ndarray] | None,
    notes: list[str],
) -> tuple[list[np.ndarray], int, int]:
    """P x K batches from identities that have a positive; fewer identities than P: more images each.
    Returns the identities drawn from, P and K.

    Split by rank, every rank fits P to the fewest identities any rank holds, so all agree on the batch.
    """
    before, by_class = len(by_class), _with_positives(by_class)
    if len(by_class) < before:
        notes.append(f"{before - len(by_class)} one-image identities left out of the P x K batches (no positive pair)")
    fewest = min(len(_with_positives(_classes(labels, s))) for s in shares) if shares else len(by_class)
    p = batch_size // k
    if p > fewest:
        p, asked = fewest, k
        k = batch_size // p
        notes.append(
            f"batch {batch_size} as {batch_size // asked} identities x {asked} images needs more identities than "
            f"the {p} the data has: {p} x {k} (batch {p * k})"
        )
    return by_class, p, k


def _with_positives(classes: list[np.ndarray]) -> list[np.ndarray]:
    """Identities with at least two images (a one-image identity has no positive in a P x K batch), unless
    that would leave fewer than two."""
    singles = sum(len(m) < 2 for m in classes)
    return [m for m in classes if len(m) >= 2] if singles and singles < len(classes) - 1 else classes
