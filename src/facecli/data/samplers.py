"""Batch samplers for training: P identities x K images (metric losses) or shuffled batches (heads).

Both are deterministic in (seed, epoch), split whole batches across distributed ranks and can start
part-way through an epoch, which is what makes an interrupted run resume exactly. One iteration runs
from the starting point to the last epoch, so loader workers prefetch across epoch ends.

Packed data (a .rec) under DDP is split by rank instead: each process owns one contiguous 1/world of
the file and draws its batches from it alone, visiting it in blocks of consecutive records (block order
and the records within a window of blocks shuffled), so N machines each read their own part of the file
once per epoch, front to back within each block, and never the whole of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, get_args

import numpy as np
from torch.utils.data import Sampler

from facecli.errors import FaceCliError, unknown_choice

SamplerKind = Literal["pk", "random"]
SAMPLERS = get_args(SamplerKind)
BLOCK = 512  # records read one after another when the data is split by rank
WINDOW = 8  # blocks whose records are shuffled together


class TrainBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yields batches of (image index, augmentation seed), epoch after epoch; an epoch covers about every
    image once and is `len(self)` batches long."""

    def __init__(
        self,
        labels: np.ndarray,
        epochs: int,
        batch_size: int,
        kind: SamplerKind = "pk",
        k: int = 4,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        file_order: np.ndarray | None = None,
    ) -> None:
        """`file_order` (the images in the order they lie in a packed file) splits the data by rank under DDP."""
        if kind not in SAMPLERS:
            raise unknown_choice("sampler", kind, SAMPLERS)
        self.labels, self.epochs, self.kind, self.k = np.asarray(labels), epochs, kind, k
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.notes: list[str] = []  # how the batch was adapted to the data, for the run log
        per_process = len(self.labels) // world_size
        self.share = None  # this rank's images, in file order, when the data is split by rank
        if file_order is not None and world_size > 1:
            shares = [np.asarray(file_order)[r * per_process : (r + 1) * per_process] for r in range(world_size)]
            self.share = shares[rank]
            self.notes.append(
                f"the packed data is split by rank: each of the {world_size} processes reads its own "
                f"{per_process} consecutive records, in blocks of {BLOCK}"
            )
        self.by_class = self._classes(self.share)
        if per_process < 2:
            raise FaceCliError(f"{len(self.labels)} training images cannot make batches on {world_size} process(es)")
        if batch_size > per_process:  # less data than one batch: the batch shrinks to the data
            fitted = per_process
            if kind == "pk":
                if per_process < 2 * k:
                    self.k = k = max(1, per_process // 2)
                fitted -= per_process % k
            self.notes.append(f"batch {batch_size} is more than the {per_process} images per process: batch {fitted}")
            batch_size = fitted
        if kind == "pk":
            if batch_size % k or batch_size < 2 * k:
                raise FaceCliError(f"--batch-size {batch_size} must be a multiple of --k {k} and at least 2 x {k}")
            batch_size = self._fit_pk(batch_size, shares if self.share is not None else None)
        self.batch_size = batch_size
        self.epoch, self.start = 0, 0

    def _classes(self, images: np.ndarray | None) -> list[np.ndarray]:
        """The images of each identity (among `images`, or all), identities without images left out."""
        labels = self.labels if images is None else self.labels[images]
        order = np.argsort(labels, kind="stable")
        members = np.split(order, np.flatnonzero(np.diff(labels[order])) + 1) if len(order) else []
        return [m if images is None else images[m] for m in members]

    def _fit_pk(self, batch_size: int, shares: list[np.ndarray] | None) -> int:
        """P x K batches from identities that have a positive; fewer identities than P: more images each.

        Split by rank, every rank fits P to the fewest identities any rank holds, so all agree on the batch.
        """
        before, self.by_class = len(self.by_class), _with_positives(self.by_class)
        if len(self.by_class) < before:
            self.notes.append(
                f"{before - len(self.by_class)} one-image identities left out of the P x K batches (no positive pair)"
            )
        fewest = min(len(_with_positives(self._classes(s))) for s in shares) if shares else len(self.by_class)
        p = batch_size // self.k
        if p > fewest:
            p, asked = fewest, self.k
            self.k = batch_size // p
            self.notes.append(
                f"batch {batch_size} as {batch_size // asked} identities x {asked} images needs more identities than "
                f"the {p} the data has: {p} x {self.k} (batch {p * self.k})"
            )
        return p * self.k

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Start at this epoch, skipping its first `start` batches (resuming mid-epoch)."""
        self.epoch, self.start = epoch, start

    def __len__(self) -> int:
        """Batches per process per epoch."""
        return len(self.labels) // (self.batch_size * self.world_size)

    def _pk_batches(self, rng: np.random.Generator, count: int) -> list[np.ndarray]:
        p = self.batch_size // self.k
        batches = []
        for _ in range(count):
            chosen = rng.choice(len(self.by_class), p, replace=False)
            batch = [rng.choice(m, self.k, replace=len(m) < self.k) for m in (self.by_class[c] for c in chosen)]
            batches.append(np.concatenate(batch))
        return batches

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for epoch in range(self.epoch, self.epochs):
            yield from self._epoch(epoch, self.start if epoch == self.epoch else 0)

    def _epoch(self, epoch: int, start: int) -> Iterator[list[tuple[int, int]]]:
        if self.share is not None:
            yield from self._own_share(epoch, start)
            return
        rng = np.random.default_rng([self.seed, epoch])
        count = len(self) * self.world_size
        if self.kind == "pk":
            batches = self._pk_batches(rng, count)
        else:
            order = rng.permutation(len(self.labels))
            batches = [order[i * self.batch_size : (i + 1) * self.batch_size] for i in range(count)]
        seeds = rng.integers(0, 2**62, (count, self.batch_size))
        for n in range(self.rank + start * self.world_size, count, self.world_size):
            yield [(int(i), int(s)) for i, s in zip(batches[n], seeds[n], strict=True)]

    def _own_share(self, epoch: int, start: int) -> Iterator[list[tuple[int, int]]]:
        """This rank's batches from its own share of a packed file, read block by block."""
        rng = np.random.default_rng([self.seed, epoch, self.rank])
        if self.kind == "pk":
            batches = self._pk_batches(rng, len(self))
        else:
            blocks = [self.share[i : i + BLOCK] for i in range(0, len(self.share), BLOCK)]
            order = rng.permutation(len(blocks))
            windows = [np.concatenate([blocks[b] for b in order[w : w + WINDOW]]) for w in range(0, len(order), WINDOW)]
            stream = np.concatenate([rng.permutation(window) for window in windows])
            batches = [stream[i * self.batch_size : (i + 1) * self.batch_size] for i in range(len(self))]
        seeds = rng.integers(0, 2**62, (len(self), self.batch_size))
        for n in range(start, len(self)):
            yield [(int(i), int(s)) for i, s in zip(batches[n], seeds[n], strict=True)]


def _with_positives(classes: list[np.ndarray]) -> list[np.ndarray]:
    """Identities with at least two images (a one-image identity has no positive in a P x K batch), unless
    that would leave fewer than two."""
    singles = sum(len(m) < 2 for m in classes)
    return [m for m in classes if len(m) >= 2] if singles and singles < len(classes) - 1 else classes
