"""Classification losses on embeddings: cross-entropy over a linear or margin head, full or Partial FC."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from facecli.errors import FaceCliError
from facecli.losses.partial_fc import ClassShard, PartialFCLoss, check_sample_rate
from facecli.models.heads import LinearHead, MarginHead
from facecli.registry import LOSSES


class HeadLoss(nn.Module):
    """Cross-entropy of a classification head's logits; the head is trained with the model."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.head(embeddings, labels), labels)


def head_loss(make_head: Callable[[int], nn.Module], num_classes: int, sample_rate: float) -> nn.Module:
    """The full head's cross-entropy, or below sample rate 1 Partial FC (sharded across DDP ranks)."""
    if check_sample_rate(sample_rate) == 1:
        return HeadLoss(make_head(num_classes))
    shard = ClassShard.of_this_process(num_classes)
    return PartialFCLoss(make_head(shard.size), shard, sample_rate)


@LOSSES.register("softmax")
def softmax(embedding_size: int, num_classes: int, sample_rate: float = 1.0) -> nn.Module:
    """Plain softmax cross-entropy (the baseline)."""
    return head_loss(lambda classes: LinearHead(embedding_size, classes), num_classes, sample_rate)


@LOSSES.register("arcface")
def arcface(
    embedding_size: int,
    num_classes: int,
    scale: float = 64.0,
    margin: float = 0.5,
    easy_margin: bool = False,
    sample_rate: float = 1.0,
) -> nn.Module:
    """ArcFace, additive angular margin: s * cos(theta + m) for the true class."""
    return head_loss(
        lambda classes: MarginHead(embedding_size, classes, scale, m2=margin, easy_margin=easy_margin),
        num_classes,
        sample_rate,
    )


@LOSSES.register("cosface")
def cosface(
    embedding_size: int, num_classes: int, scale: float = 64.0, margin: float = 0.35, sample_rate: float = 1.0
) -> nn.Module:
    """CosFace, additive cosine margin: s * (cos(theta) - m) for the true class."""
    return head_loss(lambda classes: MarginHead(embedding_size, classes, scale, m3=margin), num_classes, sample_rate)


@LOSSES.register("combined")
def combined(
    embedding_size: int,
    num_classes: int,
    scale: float = 64.0,
    margins: tuple[float, float, float] = (1.0, 0.3, 0.2),
    sample_rate: float = 1.0,
) -> nn.Module:
    """The combined margin form cos(m1 * theta + m2) - m3, margins = (m1, m2, m3)."""
    if len(margins) != 3:
        raise FaceCliError(f"--margins takes m1,m2,m3 (three numbers), got {list(margins)}")
    return head_loss(lambda classes: MarginHead(embedding_size, classes, scale, *margins), num_classes, sample_rate)
