"""Batch samplers for training: P identities x K images (metric losses) or shuffled batches (heads).

Both are deterministic in (seed, epoch), split whole batches across distributed ranks and can start
part-way through an epoch, which is what makes an interrupted run resume exactly. One iteration runs
from the starting point to the last epoch, so loader workers prefetch across epoch ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, get_args

import numpy as np
from torch.utils.data import Sampler

from facecli.errors import FaceCliError, unknown_choice

SamplerKind = Literal["pk", "random"]
SAMPLERS = get_args(SamplerKind)


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
    ) -> None:
        if kind not in SAMPLERS:
            raise unknown_choice("sampler", kind, SAMPLERS)
        self.labels, self.epochs, self.kind, self.k = np.asarray(labels), epochs, kind, k
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.notes: list[str] = []  # how the batch was adapted to the data, for the run log
        classes = [np.flatnonzero(self.labels == c) for c in range(int(self.labels.max()) + 1)]
        self.by_class = [members for members in classes if len(members)]
        per_process = len(self.labels) // world_size
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
            batch_size = self._fit_pk(batch_size)
        self.batch_size = batch_size
        self.epoch, self.start = 0, 0

    def _fit_pk(self, batch_size: int) -> int:
        """P x K batches from identities that have a positive; fewer identities than P: more images each."""
        singles = sum(len(m) < 2 for m in self.by_class)
        if singles and singles < len(self.by_class) - 1:
            # a one-image identity has no positive in a P x K batch
            self.by_class = [m for m in self.by_class if len(m) >= 2]
            self.notes.append(f"{singles} one-image identities left out of the P x K batches (no positive pair)")
        p = batch_size // self.k
        if p > len(self.by_class):
            p, asked = len(self.by_class), self.k
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
