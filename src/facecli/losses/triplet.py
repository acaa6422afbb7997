"""FaceNet's triplet loss on L2-normalised embeddings, with online miners chosen by name."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from facecli.errors import unknown_choice
from facecli.registry import LOSSES

Miner = Callable[[torch.Tensor, torch.Tensor, float], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def _masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def all_triplets(dist: torch.Tensor, labels: torch.Tensor, margin: float) -> tuple[torch.Tensor, ...]:
    """Every valid (anchor, positive, negative) that still violates the margin."""
    positive, negative = _masks(labels)
    valid = positive[:, :, None] & negative[:, None, :]
    violating = valid & (dist[:, :, None] - dist[:, None, :] + margin > 0)
    return torch.nonzero(violating, as_tuple=True)


def semi_hard(dist: torch.Tensor, labels: torch.Tensor, margin: float) -> tuple[torch.Tensor, ...]:
    """FaceNet's choice: negatives farther than the positive but inside the margin."""
    positive, negative = _masks(labels)
    d_ap, d_an = dist[:, :, None], dist[:, None, :]
    valid = positive[:, :, None] & negative[:, None, :] & (d_an > d_ap) & (d_an < d_ap + margin)
    return torch.nonzero(valid, as_tuple=True)


def batch_hard(dist: torch.Tensor, labels: torch.Tensor, margin: float) -> tuple[torch.Tensor, ...]:
    """Per anchor, the farthest positive and the closest negative."""
    positive, negative = _masks(labels)
    anchors = torch.nonzero(positive.any(1) & negative.any(1)).flatten()
    hardest_pos = dist.masked_fill(~positive, -1).argmax(1)[anchors]
    hardest_neg = dist.masked_fill(~negative, float("inf")).argmin(1)[anchors]
    return anchors, hardest_pos, hardest_neg


MINERS: dict[str, Miner] = {"all": all_triplets, "semi_hard": semi_hard, "batch_hard": batch_hard}


class TripletLoss(nn.Module):
    """mean(max(0, d(a, p) - d(a, n) + margin)) over mined triplets, d the L2 distance of unit vectors.

    With `aux_head`, adds FaceNet ports' auxiliary softmax cross-entropy times `aux_weight`.
    """

    def __init__(
        self,
        margin: float = 0.2,
        mining: str = "batch_hard",
        aux_head: nn.Module | None = None,
        aux_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if mining not in MINERS:
            raise unknown_choice("mining", mining, MINERS)
        self.margin, self.miner, self.head, self.aux_weight = margin, MINERS[mining], aux_head, aux_weight

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = F.normalize(embeddings.float(), dim=1)
        dist = torch.cdist(x, x).clamp_min(0)
        a, p, n = self.miner(dist.detach(), labels, self.margin)
        if len(a):
            loss = F.relu(dist[a, p] - dist[a, n] + self.margin).mean()
        else:
            loss = dist.sum() * 0.0  # no informative triplet in this batch: zero, still in the graph
        if self.head is not None and self.aux_weight > 0:
            loss = loss + self.aux_weight * F.cross_entropy(self.head(embeddings), labels)
        return loss


@LOSSES.register("triplet")
def triplet(
    embedding_size: int,
    num_classes: int,
    margin: float = 0.2,
    mining: str = "batch_hard",
    aux_ce_weight: float = 0.0,
) -> TripletLoss:
    """FaceNet triplet loss with a miner, optionally with the auxiliary softmax."""
    from facecli.models.heads import LinearHead

    head = LinearHead(embedding_size, num_classes) if aux_ce_weight > 0 else None
    return TripletLoss(margin, mining, head, aux_ce_weight)
