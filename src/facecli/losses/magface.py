"""MagFace (Meng et al., "MagFace: A Universal Representation for Face Recognition and Quality Assessment",
CVPR 2021): the angular margin grows with the feature's magnitude a = ||f||, and a regulariser rewards large
magnitudes, so that a face's magnitude becomes its quality score.

With a clamped to [l_a, u_a]: m(a) = (u_margin - l_margin) / (u_a - l_a) * (a - l_a) + l_margin, the target
logit is s * cos(theta + m(a)), and the loss adds lambda_g * mean(g(a)), g(a) = a / u_a^2 + 1 / a.
As in the authors' code: cos(theta + m) is cos * cos(m) - sin * sin(m); their default is the easy margin
(the margin only where cos > 0); without it, past theta = pi - m the logit falls back to cos - m * sin(pi - m).
Defaults are their training script's (l_a 10, u_a 110, l_margin 0.45, u_margin 0.8, lambda_g 35, s 64).
Deviation: sin = sqrt(1 - cos^2) is taken of at least 1e-12, where theirs gives an infinite gradient at
cos = +-1 (the NaN of face.evoLVe#117); the loss differs there by under 1e-5.
"""

from __future__ import annotations

import math

import torch

from facecli.errors import FaceCliError
from facecli.models.heads import CentresHead
from facecli.numbers import FINITE, NOT_NEGATIVE, POSITIVE, check_number
from facecli.registry import HEADS


@HEADS.register("magface")
class MagFaceHead(CentresHead):
    """Scaled cosine logits with MagFace's magnitude-aware margin on the true class, and its regulariser."""

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        l_a: float,
        u_a: float,
        l_margin: float,
        u_margin: float,
        lambda_g: float,
        scale: float,
        easy_margin: bool,
    ) -> None:
        super().__init__(embedding_size, num_classes)
        for flag, value, bound in (
            ("--l-a", l_a, POSITIVE),
            ("--u-a", u_a, POSITIVE),
            ("--lambda-g", lambda_g, NOT_NEGATIVE),
            ("--l-margin", l_margin, NOT_NEGATIVE),
            ("--u-margin", u_margin, FINITE),
        ):
            check_number(flag, value, bound)
        if u_a <= l_a:
            raise FaceCliError(f"MagFace needs --u-a above --l-a, got --l-a {l_a:g} and --u-a {u_a:g}")
        if u_margin < l_margin:
            raise FaceCliError(f"MagFace needs --u-margin >= --l-margin, got {l_margin:g} and {u_margin:g}")
        self.l_a, self.u_a, self.l_margin, self.u_margin = l_a, u_a, l_margin, u_margin
        self.lambda_g, self.scale, self.easy_margin = lambda_g, scale, easy_margin

    def magnitudes(self, embeddings: torch.Tensor) -> torch.Tensor:
        """a = ||f||, clamped to [l_a, u_a] (the gradient stops outside)."""
        return embeddings.float().norm(dim=1).clamp(self.l_a, self.u_a)

    def logits(
        self, embeddings: torch.Tensor, labels: torch.Tensor | None, rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scaled logits of every class (of `rows` only, Partial FC); the margin on each labelled class."""
        cosine = self.class_cosines(embeddings, rows)
        if labels is None:
            return cosine * self.scale
        a = self.magnitudes(embeddings)
        m = (self.u_margin - self.l_margin) / (self.u_a - self.l_a) * (a - self.l_a) + self.l_margin
        here = labels >= 0
        labels = labels.clamp_min(0)
        target = cosine.gather(1, labels[:, None]).squeeze(1)
        sine = (1.0 - target * target).clamp_min(1e-12).sqrt()
        margined = target * m.cos() - sine * m.sin()
        if self.easy_margin:
            margined = torch.where(target > 0, margined, target)
        else:
            past = target <= torch.cos(math.pi - m)
            margined = torch.where(past, target - torch.sin(math.pi - m) * m, margined)
        logits = cosine.scatter(1, labels[:, None], torch.where(here, margined, target)[:, None])
        return logits * self.scale

    def penalty(self, embeddings: torch.Tensor) -> torch.Tensor:
        """lambda_g * mean(g(a)): rewards large magnitudes (the loss adds it to the cross-entropy)."""
        a = self.magnitudes(embeddings)
        return self.lambda_g * (a / self.u_a**2 + 1 / a).mean()
