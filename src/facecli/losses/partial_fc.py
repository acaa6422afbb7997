"""Partial FC ("Partial FC: Training 10 Million Identities on a Single Machine"): a classification head
whose class centres are split across the DDP ranks, each step scoring the batch against the centres of
its positives and a sample of the rest.

Every rank holds the rows of its own classes (`ClassShard`). Embeddings and labels of the whole global
batch are all-gathered; each rank keeps its positives' centres, samples negatives from its shard up to
`sample_rate` of it, and the softmax cross-entropy is computed across ranks (max, sum and target logit
all-reduced), so no rank ever holds all C logits or centres. On one process with `sample_rate` 1 it is
exactly the full head's cross-entropy.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from facecli.numbers import SAMPLE_RATE, check_number


def head_penalty(head: nn.Module, embeddings: torch.Tensor) -> torch.Tensor | float:
    """The head's own term added to its cross-entropy (MagFace's regulariser), 0 for most heads."""
    penalty = getattr(head, "penalty", None)
    return 0.0 if penalty is None else penalty(embeddings)


def check_sample_rate(rate: float) -> float:
    """`rate` if it is in (0, 1], else a one-line error."""
    return check_number("--sample-rate", rate, SAMPLE_RATE)


@dataclass(frozen=True)
class ClassShard:
    """The classes [start, start + size) of rank `rank` of `world_size`, out of `num_classes`."""

    num_classes: int
    rank: int = 0
    world_size: int = 1

    @property
    def size(self) -> int:
        return self.num_classes // self.world_size + (self.rank < self.num_classes % self.world_size)

    @property
    def start(self) -> int:
        return self.num_classes // self.world_size * self.rank + min(self.rank, self.num_classes % self.world_size)

    @classmethod
    def of_this_process(cls, num_classes: int) -> ClassShard:
        """This rank's shard in a DDP job (the whole head on one process)."""
        if dist.is_available() and dist.is_initialized():
            return cls(num_classes, dist.get_rank(), dist.get_world_size())
        return cls(num_classes)


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0; the backward sums every rank's gradient for this rank's part (gloo and NCCL).

    The gradient is scaled by the world size: DDP then averages the trunk's gradients over the ranks,
    and each rank's loss is already the mean over the global batch."""

    @staticmethod
    def forward(ctx, part: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        parts = [torch.empty_like(part) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, part.contiguous())
        ctx.rows, ctx.rank = part.shape[0], dist.get_rank()
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows] * dist.get_world_size()


class _ShardedCrossEntropy(torch.autograd.Function):
    """Mean softmax cross-entropy over logits split by class across ranks; label -1: not in this shard."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        top = logits.max(dim=1, keepdim=True).values
        dist.all_reduce(top, dist.ReduceOp.MAX)
        shifted = logits - top
        probs = shifted.exp()
        total = probs.sum(dim=1, keepdim=True)
        dist.all_reduce(total)
        probs.div_(total)
        here = labels >= 0
        target = torch.zeros(len(labels), device=logits.device, dtype=logits.dtype)
        target[here] = shifted[here, labels[here]]
        dist.all_reduce(target)  # each label's logit lives on one rank
        ctx.save_for_backward(probs, labels)
        return (total.squeeze(1).log() - target).mean()  # log-sum-exp minus the target logit, never log(p)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: ANN001
        probs, labels = ctx.saved_tensors
        here = torch.nonzero(labels >= 0).squeeze(1)
        probs[here, labels[here]] -= 1
        return probs * (grad / len(labels)), None


class PartialFCLoss(nn.Module):
    """Cross-entropy of a (margin or linear) head over sampled class centres, sharded across ranks.

    `head` holds this rank's `shard` of the class centres; its parameters are the rank's own, so DDP must
    leave them out (`sharded_parameters`) and checkpoints gather them (training/sharded_head.py).
    """

    def __init__(self, head: nn.Module, shard: ClassShard, sample_rate: float) -> None:
        super().__init__()
        self.head, self.shard, self.sample_rate = head, shard, sample_rate

    def sharded_parameters(self) -> list[str]:
        """Names of the parameters that differ by rank (none on one process)."""
        return [name for name, _ in self.head.named_parameters()] if self.shard.world_size > 1 else []

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self._cross_entropy(embeddings, labels) + head_penalty(self.head, embeddings)  # penalty: own part

    def _cross_entropy(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.shard.world_size > 1:
            embeddings = _GatherWithGrad.apply(embeddings)
            gathered = [torch.empty_like(labels) for _ in range(self.shard.world_size)]
            dist.all_gather(gathered, labels.contiguous())
            labels = torch.cat(gathered)
        local = labels - self.shard.start
        here = (local >= 0) & (local < self.shard.size)
        rows, local = self._sample(local, here)
        logits = self.head.logits(embeddings, local, rows)
        if self.shard.world_size == 1:
            return F.cross_entropy(logits, local)
        return _ShardedCrossEntropy.apply(logits.float(), local)

    def _sample(self, local: torch.Tensor, here: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """The centres scored this step (None: all of the shard) and the labels as indices into them (-1:
        another rank's class). Positives are always kept; negatives fill up to sample_rate of the shard."""
        count = int(self.sample_rate * self.shard.size)
        positives = torch.unique(local[here])
        if count >= self.shard.size or len(positives) >= self.shard.size:
            return None, torch.where(here, local, -1)
        priority = torch.rand(self.shard.size, device=local.device)
        priority[positives] = 2.0  # above any random draw
        rows = priority.topk(max(count, len(positives))).indices.sort().values
        return rows, torch.where(here, torch.searchsorted(rows, local.clamp(0, self.shard.size - 1)), -1)
