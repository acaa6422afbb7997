"""Batch samplers for training: P identities x K images (metric losses) or shuffled batches (heads), laid
out as a `BatchPlan` says (data/batch_plan.py fits the batch to the data; the sampler only draws).

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

import numpy as np
from torch.utils.data import Sampler

from facecli.data.batch_plan import BLOCK, BatchPlan

WINDOW = 8  # blocks whose records are shuffled together


class TrainBatchSampler(Sampler[list[tuple[int, int]]]):
    """Yields batches of (image index, augmentation seed), epoch after epoch, as `plan` lays them out; an
    epoch covers about every image once and is `len(self)` batches long."""

    def __init__(self, plan: BatchPlan, epochs: int, seed: int = 0) -> None:
        self.plan, self.epochs, self.seed = plan, epochs, seed
        self.labels, self.kind, self.batch_size, self.k = plan.labels, plan.kind, plan.batch_size, plan.k
        self.rank, self.world_size, self.share, self.by_class = plan.rank, plan.world_size, plan.share, plan.by_class
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Start at this epoch, skipping its first `start` batches (resuming mid-epoch)."""
        self.epoch, self.start = epoch, start

    def __len__(self) -> int:
        """Batches per process per epoch."""
        return self.plan.steps_per_epoch

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
