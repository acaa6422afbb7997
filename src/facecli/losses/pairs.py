"""Pair losses as siamese networks train them, on balanced in-batch genuine/impostor pairs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facecli.registry import LOSSES


def balanced_pairs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(i, j, same) for every genuine pair in the batch and as many impostor pairs, deterministically spread."""
    i, j = torch.triu_indices(len(labels), len(labels), offset=1, device=labels.device)
    same = labels[i] == labels[j]
    genuine, impostor = torch.nonzero(same).flatten(), torch.nonzero(~same).flatten()
    count = min(len(genuine), len(impostor))
    if count == 0:
        keep = torch.cat([genuine, impostor])
    else:
        pick = torch.linspace(0, len(impostor) - 1, count, device=labels.device).long()
        keep = torch.cat(
            [genuine[torch.linspace(0, len(genuine) - 1, count, device=labels.device).long()], impostor[pick]]
        )
    return i[keep], j[keep], same[keep].float()


class ContrastiveLoss(nn.Module):
    """same * d^2 + (1 - same) * max(0, margin - d)^2, d the L2 distance of unit embeddings."""

    def __init__(self, margin: float = 1.0) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = F.normalize(embeddings.float(), dim=1)
        i, j, same = balanced_pairs(labels)
        d = (x[i] - x[j]).norm(dim=1)
        return (same * d.pow(2) + (1 - same) * F.relu(self.margin - d).pow(2)).mean()


class SiameseLoss(nn.Module):
    """Siamese networks' pair classifier: |f1 - f2| -> FC -> sigmoid, binary cross-entropy on 'same'."""

    def __init__(self, embedding_size: int) -> None:
        super().__init__()
        self.fc = nn.Linear(embedding_size, 1)

    def pair_logits(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Logit that a and b show the same identity."""
        return self.fc((a.float() - b.float()).abs()).squeeze(1)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        i, j, same = balanced_pairs(labels)
        return F.binary_cross_entropy_with_logits(self.pair_logits(embeddings[i], embeddings[j]), same)


@LOSSES.register("contrastive")
def contrastive(embedding_size: int, num_classes: int, margin: float = 1.0) -> ContrastiveLoss:
    """Contrastive loss with a margin on the distance."""
    return ContrastiveLoss(margin)


@LOSSES.register("siamese")
def siamese(embedding_size: int, num_classes: int) -> SiameseLoss:
    """Siamese pair classification with binary cross-entropy."""
    return SiameseLoss(embedding_size)
