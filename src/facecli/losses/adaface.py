"""AdaFace (Kim et al., "AdaFace: Quality Adaptive Margin for Face Recognition", CVPR 2022): the margin of
each face follows its feature norm, a proxy of image quality, against running batch statistics.

With z = clip(h * (||f|| - batch_mean) / (batch_std + eps), -1, 1), the target logit is
s * (cos(clip(theta - m * z, eps, pi - eps)) - (m + m * z)): high-norm (clear) faces get an angular
margin like ArcFace, low-norm (hard) ones an additive one like CosFace. As in the authors' code:
- the norm is of the raw feature, detached and clipped to [0.001, 100]; the cosines use the normalised
  feature and centres, clamped to +-(1 - eps), eps = 1e-3 (AdaFace#7: the head takes both);
- batch_mean and batch_std (buffers, starting at 20 and 100) are updated from the batch before it is scored,
  as t_alpha * batch + (1 - t_alpha) * running; the std is unbiased;
- past pi the angle is clipped, where ArcFace falls back to a cosine margin; the paper does not say.
Defaults are the authors' training scripts' (m=0.4, h=0.333, s=64, t_alpha=0.01: the paper's momentum
0.99; their head class alone defaults to t_alpha=1). Deviation: a batch of one face has no std, so the
running std is then left as it was, where the authors' code would store NaN for good.
Statistics across DDP ranks: losses/ranks.py.
"""

from __future__ import annotations

import math

import torch

from facecli.losses.ranks import RankSplit, batch_mean_std
from facecli.models.heads import CentresHead
from facecli.numbers import ANGULAR_MARGIN, POSITIVE, Bound, check_number
from facecli.registry import HEADS

EPS = 1e-3


@HEADS.register("adaface")
class AdaFaceHead(CentresHead):
    """Scaled cosine logits with AdaFace's norm-adaptive margin on the true class."""

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        margin: float,
        h: float,
        scale: float,
        t_alpha: float,
        ranks: RankSplit = RankSplit(),  # noqa: B008  (frozen)
    ) -> None:
        super().__init__(embedding_size, num_classes)
        check_number("--t-alpha", t_alpha, Bound(0, 1, low_open=True))
        check_number("--h", h, POSITIVE)
        check_number("--margin", margin, ANGULAR_MARGIN)
        self.margin, self.h, self.scale, self.t_alpha, self.ranks = margin, h, scale, t_alpha, ranks
        self.register_buffer("batch_mean", torch.full((1,), 20.0))
        self.register_buffer("batch_std", torch.full((1,), 100.0))

    def logits(
        self, embeddings: torch.Tensor, labels: torch.Tensor | None, rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scaled logits of every class (of `rows` only, Partial FC); the margin goes on each embedding's
        labelled class, on none where the label is -1 (another rank's class). Updates the running statistics."""
        cosine = self.class_cosines(embeddings, rows).clamp(-1 + EPS, 1 - EPS)
        if labels is None:
            return cosine * self.scale
        norms = embeddings.detach().float().norm(dim=1).clip(0.001, 100)
        self._update_statistics(norms)
        z = ((norms - self.batch_mean) / (self.batch_std + EPS) * self.h).clip(-1, 1)
        here = labels >= 0
        labels = labels.clamp_min(0)
        target = cosine.gather(1, labels[:, None]).squeeze(1)
        angle = (target.acos() - self.margin * z).clip(EPS, math.pi - EPS)
        margined = angle.cos() - (self.margin + self.margin * z)
        logits = cosine.scatter(1, labels[:, None], torch.where(here, margined, target)[:, None])
        return logits * self.scale

    @torch.no_grad()
    def _update_statistics(self, norms: torch.Tensor) -> None:
        mean, std = batch_mean_std(norms, self.ranks)
        self.batch_mean.copy_(mean * self.t_alpha + (1 - self.t_alpha) * self.batch_mean)
        if std is not None:
            self.batch_std.copy_(std * self.t_alpha + (1 - self.t_alpha) * self.batch_std)
