"""The error-versus-reject curve: how verification error falls as the pairs of lowest quality are set aside,
the standard check that a quality score means something (Grother and Tabassi; ISO/IEC 29794-1).

A pair is as good as its worse face. The threshold is fixed once, on every pair (the one that classifies
them best), and then the lowest-quality pairs are dropped in steps: a useful score makes the error on
what is left fall.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facecli.verification.metrics import counts

REJECTED = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5)  # shares of the pairs set aside, lowest quality first


@dataclass
class RejectCurve:
    """Error and false non-match rate at one fixed threshold, for each share of the pairs rejected."""

    threshold: float  # in scores (higher means same), chosen on every pair
    rejected: list[float]
    error: list[float]  # share of the kept pairs misclassified at the threshold
    fnmr: list[float]  # share of the kept genuine pairs scored at or under it
    kept: list[int]  # pairs left


def error_versus_reject(
    scores: np.ndarray, labels: np.ndarray, quality: np.ndarray, rejected: tuple[float, ...] = REJECTED
) -> RejectCurve:
    """The curve for pairs with `scores`, `labels` (1 same) and `quality` (the lower of the two faces')."""
    thresholds = np.unique(scores)
    threshold = float(thresholds[int(np.argmax(counts(scores, labels, thresholds).accuracy))])
    order = np.argsort(quality, kind="stable")  # lowest quality first
    curve = RejectCurve(threshold, [], [], [], [])
    for share in rejected:
        kept = order[int(round(share * len(order))) :]
        accepted, same = scores[kept] > threshold, labels[kept] == 1
        curve.rejected.append(share)
        curve.error.append(float((accepted != same).mean()) if len(kept) else float("nan"))
        curve.fnmr.append(float((~accepted[same]).mean()) if same.any() else float("nan"))
        curve.kept.append(len(kept))
    return curve
