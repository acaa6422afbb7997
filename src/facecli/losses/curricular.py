"""CurricularFace (Huang et al., "CurricularFace: Adaptive Curriculum Learning Loss for Deep Face
Recognition", CVPR 2020): ArcFace's margin on the target, and every negative harder than the margined target
(cos_j > cos(theta_y + m)) re-weighted to cos_j * (t + cos_j), where t, a running mean of the target cosine,
grows as the model learns: easy samples first, hard ones later.

As in the authors' code: t (a buffer, starting at 0) is updated from the batch before the batch is scored,
t = 0.01 * mean(cos theta_y) + 0.99 * t; the hard negatives are those above cos(theta_y + m) even where the
target itself falls back, past theta_y = pi - m, to cos theta_y - m * sin(pi - m). Defaults m=0.5, s=64.
Deviation: sin = sqrt(1 - cos^2) of at least 1e-12 (the NaN of face.evoLVe#117). Under Partial FC every
rank needs each sample's target cosine for its negatives: losses/ranks.py.
"""

from __future__ import annotations

import math

import torch

from facecli.losses.ranks import RankSplit, batch_mean, every_target
from facecli.models.heads import CentresHead
from facecli.numbers import ANGULAR_MARGIN, check_number
from facecli.registry import HEADS

MOMENTUM = 0.01  # of t's running mean, fixed in the paper and the authors' code


@HEADS.register("curricularface")
class CurricularHead(CentresHead):
    """Scaled cosine logits with ArcFace's margin on the target and curriculum-weighted hard negatives."""

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        margin: float,
        scale: float,
        ranks: RankSplit = RankSplit(),  # noqa: B008  (frozen)
    ) -> None:
        super().__init__(embedding_size, num_classes)
        check_number("--margin", margin, ANGULAR_MARGIN)
        self.margin, self.scale, self.ranks = margin, scale, ranks
        self.register_buffer("t", torch.zeros(1))

    def logits(
        self, embeddings: torch.Tensor, labels: torch.Tensor | None, rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Scaled logits of every class (of `rows` only, Partial FC); label -1: another rank's class, whose
        target cosine comes from that rank. Updates t."""
        cosine = self.class_cosines(embeddings, rows)
        if labels is None:
            return cosine * self.scale
        here = labels >= 0
        labels = labels.clamp_min(0)
        target = cosine.gather(1, labels[:, None]).squeeze(1)
        margined = self._margined(target)
        final = torch.where(target > math.cos(math.pi - self.margin), margined, target - self._fallback())
        everywhere = every_target(target, here, self.ranks)  # no gradient: it only picks the hard negatives
        with torch.no_grad():
            self.t.copy_(batch_mean(everywhere, self.ranks) * MOMENTUM + (1 - MOMENTUM) * self.t)
        hard = cosine > self._margined(everywhere)[:, None]
        logits = torch.where(hard, cosine * (self.t + cosine), cosine)
        kept = logits.gather(1, labels[:, None]).squeeze(1)
        logits = logits.scatter(1, labels[:, None], torch.where(here, final, kept)[:, None])
        return logits * self.scale

    def _margined(self, target: torch.Tensor) -> torch.Tensor:
        """cos(theta + m) as cos * cos(m) - sin * sin(m)."""
        sine = (1.0 - target * target).clamp_min(1e-12).sqrt()
        return target * math.cos(self.margin) - sine * math.sin(self.margin)

    def _fallback(self) -> float:
        return math.sin(math.pi - self.margin) * self.margin
