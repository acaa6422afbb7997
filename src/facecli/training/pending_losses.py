"""Step losses kept where the model runs and read back together: one host sync every few steps on a GPU
instead of one per step (on the CPU nothing runs ahead, so every step is read at once)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

READ_EVERY_ON_GPU = 10  # steps between host syncs when the device runs asynchronously


@dataclass
class PendingLosses:
    """Losses of steps not yet read, with each step's number, lr and images."""

    every: int
    losses: list[torch.Tensor] = field(default_factory=list)
    steps: list[tuple[int, float, int]] = field(default_factory=list)

    @classmethod
    def for_device(cls, device: torch.device) -> PendingLosses:
        return cls(READ_EVERY_ON_GPU if device.type == "cuda" else 1)

    def add(self, loss: torch.Tensor, step: int, lr: float, images: int) -> None:
        """Keep one step's loss (detached, on its device)."""
        self.losses.append(loss.detach())
        self.steps.append((step, lr, images))

    @property
    def due(self) -> bool:
        """Whether it is time to read the kept losses back."""
        return len(self.losses) >= self.every

    def read(self) -> list[tuple[int, float, float, int]]:
        """(step, loss, lr, images) of every kept step, in one transfer; the first non-finite loss is
        returned with the steps before it and nothing after (the caller stops there)."""
        if not self.losses:
            return []
        values = torch.stack(self.losses).float().tolist()
        read = [(step, value, lr, images) for (step, lr, images), value in zip(self.steps, values, strict=True)]
        self.losses, self.steps = [], []
        bad = next((n for n, row in enumerate(read) if not math.isfinite(row[1])), None)
        return read if bad is None else read[: bad + 1]
