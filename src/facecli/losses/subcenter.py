"""Sub-center ArcFace (Deng et al., "Sub-center ArcFace: Boosting Face Recognition by Large-scale Noisy Web
Faces", ECCV 2020): K centres per class; an embedding's cosine to a class is its cosine to the nearest of
them, and ArcFace's margin goes on that. Clean faces gather around one dominant sub-centre per class, noisy
ones around the others, so the dominant centres find mislabelled images (`facecli clean`).

The paper's K=3, s=64, m=0.5. Past theta = pi - m the margin falls back to CosFace's form, as facecli's ArcFace
does (insightface's own fallback); the paper does not say.
"""

from __future__ import annotations

import torch

from facecli.models.heads import MarginHead, cosines
from facecli.numbers import ANGULAR_MARGIN, Bound, check_number
from facecli.registry import HEADS


@HEADS.register("subcenter_arcface")
class SubCenterHead(MarginHead):
    """ArcFace over K sub-centres per class: `weight` is (C*K x E), row c*K + k is sub-centre k of class c."""

    def __init__(self, embedding_size: int, num_classes: int, sub_centers: int, scale: float, margin: float) -> None:
        sub_centers = check_number("--sub-centers", sub_centers, Bound(1, 64, integer=True))
        check_number("--margin", margin, ANGULAR_MARGIN)
        super().__init__(embedding_size, num_classes * sub_centers, scale, m2=margin)
        self.sub_centers = sub_centers

    def class_cosines(self, embeddings: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Each embedding's cosine to each class: the largest over the class's sub-centres."""
        return self.sub_center_cosines(embeddings, rows).max(dim=2).values

    def sub_center_cosines(self, embeddings: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """(N x classes x K) cosines of each embedding to every sub-centre of each class (of `rows` only)."""
        centres = self.weight.view(-1, self.sub_centers, self.weight.shape[1])
        if rows is not None:
            centres = centres[rows]
        return cosines(embeddings, centres.reshape(-1, centres.shape[2])).view(len(embeddings), -1, self.sub_centers)
