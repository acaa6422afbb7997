"""What a head that keeps batch statistics, or needs every sample's target logit, must gather across DDP ranks.

A full head under DDP (`batch`): every rank holds all class centres and scores its own part of the batch,
so statistics of the batch (AdaFace's norm mean and std, CurricularFace's mean target cosine) are summed over
the ranks: each rank then updates its buffers to the same values, those of the global batch, as one process
training on that batch would. Partial FC under DDP (`classes`): the embeddings are already gathered, so every
rank sees the whole batch, but each sample's target centre lives on one rank only; its target cosine is
summed over the ranks (zero elsewhere), so every rank knows it (TFace#55, insightface#1947).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class RankSplit:
    """How a head's inputs are split across DDP ranks (neither on one process)."""

    batch: bool = False  # each rank scores its own part of the batch against every centre
    classes: bool = False  # each rank holds its own centres and sees the whole batch (Partial FC)

    @classmethod
    def of_this_process(cls, partial_fc: bool) -> RankSplit:
        """The split of a head built in this process: by class under Partial FC, else by batch."""
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return cls()
        return cls(classes=True) if partial_fc else cls(batch=True)


def batch_mean_std(values: torch.Tensor, split: RankSplit) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Mean and unbiased standard deviation of `values` (1-D, no gradient) over the global batch; the std is
    None below two values (a single value has none)."""
    sums = torch.stack([values.sum(), (values * values).sum(), values.new_tensor(float(len(values)))])
    if split.batch:
        dist.all_reduce(sums)
    total, squares, count = sums.double().unbind()
    mean = total / count
    if count < 2:
        return mean.to(values.dtype), None
    variance = ((squares - count * mean * mean) / (count - 1)).clamp_min(0)
    return mean.to(values.dtype), variance.sqrt().to(values.dtype)


def batch_mean(values: torch.Tensor, split: RankSplit) -> torch.Tensor:
    """Mean of `values` (1-D, no gradient) over the global batch."""
    return batch_mean_std(values, split)[0]


def every_target(targets: torch.Tensor, here: torch.Tensor, split: RankSplit) -> torch.Tensor:
    """Each sample's target value (no gradient) on every rank: under Partial FC the rank holding its class
    has it and the others contribute zero."""
    targets = torch.where(here, targets.detach(), torch.zeros_like(targets))
    if split.classes:
        dist.all_reduce(targets)
    return targets
