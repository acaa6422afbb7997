"""Classification heads on embeddings: a plain linear head and one cosine-logits head for all margins."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from facecli.registry import HEADS


def cosines(embeddings: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Cosine of each embedding (row) to each centre (row), in float32, within [-1, 1]."""
    return F.linear(F.normalize(embeddings.float()), F.normalize(centres.float())).clamp(-1, 1)


@HEADS.register("linear")
class LinearHead(nn.Module):
    """Softmax baseline and FaceNet's auxiliary classifier: logits = W e + b."""

    def __init__(self, embedding_size: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(embedding_size, num_classes)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.fc(embeddings)

    def logits(
        self, embeddings: torch.Tensor, labels: torch.Tensor | None, rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits of every class, or of the classes `rows` only (Partial FC)."""
        if rows is None:
            return self.fc(embeddings)
        return F.linear(embeddings, self.fc.weight[rows], self.fc.bias[rows])


class CentresHead(nn.Module):
    """Class centres, one row of `weight` (C x E) each, scored by their cosine to each embedding; subclasses
    put their margin on the labelled class in `logits(embeddings, labels, rows)`."""

    def __init__(self, embedding_size: int, num_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_size))
        nn.init.normal_(self.weight, std=0.01)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.logits(embeddings, labels)

    def class_cosines(self, embeddings: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Cosine of each embedding to each class centre (of the classes `rows` only, if given)."""
        return cosines(embeddings, self.weight if rows is None else self.weight[rows])


@HEADS.register("margin")
class MarginHead(CentresHead):
    """Scaled cosine logits with the combined margin cos(m1 * theta + m2) - m3 on the true class.

    ArcFace is (1, 0.5, 0), CosFace (1, 0, 0.35); (1, 0, 0) is a normalised softmax.
    """

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        scale: float = 64.0,
        m1: float = 1.0,
        m2: float = 0.0,
        m3: float = 0.0,
        easy_margin: bool = False,
    ) -> None:
        super().__init__(embedding_size, num_classes)
        self.scale, self.m1, self.m2, self.m3, self.easy_margin = scale, m1, m2, m3, easy_margin

    def logits(
        self, embeddings: torch.Tensor, labels: torch.Tensor | None, rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scaled logits of every class, or of the classes `rows` only (Partial FC); the margin goes on each
        embedding's labelled class, and on none where its label is -1 (its class is not among these)."""
        cosine = self.class_cosines(embeddings, rows)
        if labels is None:
            return cosine * self.scale
        here = labels >= 0
        labels = labels.clamp_min(0)
        target = cosine.gather(1, labels[:, None])
        theta = torch.acos(target.clamp(-1 + 1e-7, 1 - 1e-7))
        margined = torch.cos(self.m1 * theta + self.m2) - self.m3
        if self.easy_margin:
            margined = torch.where(target > 0, margined, target)
        elif self.m1 != 1.0 or self.m2 != 0.0:
            # past theta = pi - m2 the margin would raise the logit again: fall back to CosFace's form there
            limit = math.cos(math.pi - self.m2)
            margined = torch.where(target > limit, margined, target - math.sin(math.pi - self.m2) * self.m2 - self.m3)
        logits = cosine.scatter(1, labels[:, None], torch.where(here[:, None], margined, target))
        return logits * self.scale
