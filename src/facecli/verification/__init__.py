"""Verification (1:1): `eval`, `predict` and `sweep` on pairs of images or of templates, or on a scores file."""

from facecli.verification.api import SweepResult, predict, sweep
from facecli.verification.evaluation import TemplatePairs, evaluate
from facecli.verification.metrics import Metric, VerificationReport
from facecli.verification.scoring import PairsInput

__all__ = ["Metric", "PairsInput", "SweepResult", "TemplatePairs", "VerificationReport", "evaluate", "predict", "sweep"]
