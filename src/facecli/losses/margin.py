"""Classification losses on embeddings: cross-entropy over a linear or margin head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facecli.errors import FaceCliError
from facecli.models.heads import LinearHead, MarginHead
from facecli.registry import LOSSES


class HeadLoss(nn.Module):
    """Cross-entropy of a classification head's logits; the head is trained with the model."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.head(embeddings, labels), labels)


@LOSSES.register("softmax")
def softmax(embedding_size: int, num_classes: int) -> HeadLoss:
    """Plain softmax cross-entropy (the baseline)."""
    return HeadLoss(LinearHead(embedding_size, num_classes))


@LOSSES.register("arcface")
def arcface(
    embedding_size: int,
    num_classes: int,
    scale: float = 64.0,
    margin: float = 0.5,
    easy_margin: bool = False,
) -> HeadLoss:
    """Additive angular margin: cos(theta + m), s=64, m=0.5."""
    return HeadLoss(MarginHead(embedding_size, num_classes, scale, m2=margin, easy_margin=easy_margin))


@LOSSES.register("cosface")
def cosface(embedding_size: int, num_classes: int, scale: float = 64.0, margin: float = 0.35) -> HeadLoss:
    """Additive cosine margin: cos(theta) - m, s=64, m=0.35."""
    return HeadLoss(MarginHead(embedding_size, num_classes, scale, m3=margin))


@LOSSES.register("combined")
def combined(
    embedding_size: int,
    num_classes: int,
    scale: float = 64.0,
    margins: tuple[float, float, float] = (1.0, 0.3, 0.2),
) -> HeadLoss:
    """The combined margin form cos(m1 * theta + m2) - m3, margins = (m1, m2, m3)."""
    if len(margins) != 3:
        raise FaceCliError(f"--margins takes m1,m2,m3 (three numbers), got {list(margins)}")
    return HeadLoss(MarginHead(embedding_size, num_classes, scale, *margins))
