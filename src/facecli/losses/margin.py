"""Classification losses on embeddings: cross-entropy over a linear or margin head, full or Partial FC.

Heads take the raw features and normalise what they need; a head with a `penalty(embeddings)` (MagFace's
regulariser) has it added to the cross-entropy, computed on each rank's own part of the batch."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from facecli.errors import FaceCliError
from facecli.losses.adaface import AdaFaceHead
from facecli.losses.curricular import CurricularHead
from facecli.losses.magface import MagFaceHead
from facecli.losses.partial_fc import ClassShard, PartialFCLoss, check_sample_rate, head_penalty
from facecli.losses.ranks import RankSplit
from facecli.losses.subcenter import SubCenterHead
from facecli.models.heads import LinearHead, MarginHead
from facecli.numbers import ANGULAR_MARGIN, check_number
from facecli.registry import LOSSES


class HeadLoss(nn.Module):
    """Cross-entropy of a classification head's logits; the head is trained with the model."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.head(embeddings, labels), labels) + head_penalty(self.head, embeddings)


def head_loss(make_head: Callable[[int], nn.Module], num_classes: int, sample_rate: float) -> nn.Module:
    """The full head's cross-entropy, or below sample rate 1 Partial FC (sharded across DDP ranks)."""
    if check_sample_rate(sample_rate) == 1:
        return HeadLoss(make_head(num_classes))
    shard = ClassShard.of_this_process(num_classes)
    return PartialFCLoss(make_head(shard.size), shard, sample_rate)


def split_head_loss(
    make_head: Callable[[int, RankSplit], nn.Module], num_classes: int, sample_rate: float
) -> nn.Module:
    """head_loss for a head that gathers batch statistics or target logits across DDP ranks (losses/ranks.py)."""
    partial = check_sample_rate(sample_rate) < 1
    ranks = RankSplit.of_this_process(partial_fc=partial)
    return head_loss(lambda classes: make_head(classes, ranks), num_classes, sample_rate)


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
    check_number("--margin", margin, ANGULAR_MARGIN)
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


@LOSSES.register("subcenter_arcface")
def subcenter_arcface(
    embedding_size: int,
    num_classes: int,
    sub_centers: int = 3,
    margin: float = 0.5,
    scale: float = 64.0,
    sample_rate: float = 1.0,
) -> nn.Module:
    """Sub-center ArcFace: K centres per class, ArcFace's margin on the nearest; robust to label noise."""
    return head_loss(
        lambda classes: SubCenterHead(embedding_size, classes, sub_centers, scale, margin), num_classes, sample_rate
    )


# losses whose trained feature norm is a face-quality score (MagFace by design, AdaFace's proxy of quality)
NORM_IS_QUALITY = frozenset({"adaface", "magface"})


def quality_of(loss: str | None) -> str | None:
    """The quality score a model trained with `loss` has (ModelConfig.quality), or None."""
    return "feature_norm" if loss in NORM_IS_QUALITY else None


@LOSSES.register("adaface")
def adaface(
    embedding_size: int,
    num_classes: int,
    margin: float = 0.4,
    h: float = 0.333,
    scale: float = 64.0,
    t_alpha: float = 0.01,
    sample_rate: float = 1.0,
) -> nn.Module:
    """AdaFace: a margin adapted to each face's feature norm (image quality), angular to additive."""
    return split_head_loss(
        lambda classes, ranks: AdaFaceHead(embedding_size, classes, margin, h, scale, t_alpha, ranks),
        num_classes,
        sample_rate,
    )


@LOSSES.register("magface")
def magface(
    embedding_size: int,
    num_classes: int,
    l_a: float = 10.0,
    u_a: float = 110.0,
    l_margin: float = 0.45,
    u_margin: float = 0.8,
    lambda_g: float = 35.0,
    scale: float = 64.0,
    easy_margin: bool = True,
    sample_rate: float = 1.0,
) -> nn.Module:
    """MagFace: a margin growing with the feature's magnitude, which becomes a face-quality score."""
    return head_loss(
        lambda classes: MagFaceHead(
            embedding_size, classes, l_a, u_a, l_margin, u_margin, lambda_g, scale, easy_margin
        ),
        num_classes,
        sample_rate,
    )


@LOSSES.register("curricularface")
def curricularface(
    embedding_size: int, num_classes: int, margin: float = 0.5, scale: float = 64.0, sample_rate: float = 1.0
) -> nn.Module:
    """CurricularFace: ArcFace's margin, hard negatives weighted by an adaptive curriculum."""
    return split_head_loss(
        lambda classes, ranks: CurricularHead(embedding_size, classes, margin, scale, ranks), num_classes, sample_rate
    )
