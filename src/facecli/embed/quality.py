"""Face quality from the feature norm, for models trained with a head that makes the norm one (MagFace, AdaFace:
ModelConfig.quality), and `--min-quality`, which refuses faces below it with a reason instead of matching them.

The score is the model's own: its scale depends on the head (MagFace keeps norms between l_a and u_a, 10 and
110 by default), so a cut is chosen from the model's scores on the user's faces (`facecli embed` writes them).
"""

from __future__ import annotations

import os

from facecli.errors import FaceCliError
from facecli.models import ModelConfig
from facecli.numbers import NOT_NEGATIVE, check_number


def check_min_quality(min_quality: float | None, config: ModelConfig, model: str | os.PathLike[str]) -> None:
    """A one-line error, before any image is read, for a cut that is not a number or that `model` cannot use."""
    if min_quality is None:
        return
    check_number("--min-quality", min_quality, NOT_NEGATIVE)
    if config.quality is None:
        raise FaceCliError(
            f"--min-quality: {model} has no quality score (only models trained with --loss magface or adaface do)"
        )


def low_quality(quality: float | None, min_quality: float | None) -> str | None:
    """Why a face of `quality` is refused under `min_quality`, or None when it is not."""
    if min_quality is None or quality is None or quality >= min_quality:
        return None
    return f"quality {quality:.2f} is under --min-quality {min_quality:g}"
