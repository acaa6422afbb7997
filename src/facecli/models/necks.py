"""Necks: map a trunk's features to an embedding (before L2 normalisation)."""

from __future__ import annotations

import torch
from torch import nn


class PoolNeck(nn.Module):
    """FaceNet's neck: global average pool, dropout, linear bottleneck (no bias), BatchNorm1d (eps 1e-3)."""

    def __init__(self, in_features: int, embedding_size: int, dropout: float) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, embedding_size, bias=False)
        self.bn = nn.BatchNorm1d(embedding_size, eps=0.001, momentum=0.1, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:
            x = self.pool(x).flatten(1)
        return self.bn(self.fc(self.dropout(x)))


class FlattenNeck(nn.Module):
    """ArcFace's neck: BatchNorm2d, flatten, dropout, linear, BatchNorm1d with its scale fixed at 1."""

    def __init__(self, in_channels: int, spatial: tuple[int, int], embedding_size: int, dropout: float) -> None:
        super().__init__()
        self.bn_in = nn.BatchNorm2d(in_channels, eps=1e-05)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels * spatial[0] * spatial[1], embedding_size)
        self.bn = nn.BatchNorm1d(embedding_size, eps=1e-05)
        nn.init.constant_(self.bn.weight, 1.0)
        self.bn.weight.requires_grad = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.fc(self.dropout(self.bn_in(x).flatten(1))))
