"""Batch samplers for training: P identities x K images (metric losses) or shuffled batches (heads).

Both are deterministic in (seed, epoch), split whole batches across distributed ranks and can start
part-way through an epoch, which is what makes an interrupted run resume exactly.
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
    """Yields batches of (image index, augmentation seed); one epoch covers about every image once."""

    def __init__(
        self,
        labels: np.ndarray,
        batch_size: int,
        kind: SamplerKind = "pk",
        k: int = 4,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if kind not in SAMPLERS:
            raise unknown_choice("sampler", kind, SAMPLERS)
        self.labels, self.batch_size, self.kind, self.k = np.asarray(labels), batch_size, kind, k
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.by_class = [np.flatnonzero(self.labels == c) for c in range(int(self.labels.max()) + 1)]
        self.by_class = [members for members in self.by_class if len(members)]
        if kind == "pk":
            if batch_size % k or batch_size < 2 * k:
                raise FaceCliError(f"--batch-size {batch_size} must be a multiple of --k {k} and at least 2 x {k}")
            if batch_size // k > len(self.by_class):
                raise FaceCliError(
                    f"--batch-size {batch_size} with --k {k} needs {batch_size // k} identities per batch; "
                    f"the data has {len(self.by_class)}: lower --batch-size or raise --k"
                )
        if len(self.labels) < batch_size * world_size:
            raise FaceCliError(
                f"{len(self.labels)} training images cannot fill one batch of {batch_size} on {world_size} process(es)"
            )
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Choose the epoch's batches and skip the first `start` of them (resuming mid-epoch)."""
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
        rng = np.random.default_rng([self.seed, self.epoch])
        count = len(self) * self.world_size
        if self.kind == "pk":
            batches = self._pk_batches(rng, count)
        else:
            order = rng.permutation(len(self.labels))
            batches = [order[i * self.batch_size : (i + 1) * self.batch_size] for i in range(count)]
        seeds = rng.integers(0, 2**62, (count, self.batch_size))
        for n in range(self.rank + self.start * self.world_size, count, self.world_size):
            yield [(int(i), int(s)) for i, s in zip(batches[n], seeds[n], strict=True)]
