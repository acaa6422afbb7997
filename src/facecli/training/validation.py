"""Validation during training: the pairs checked once, scored each epoch with the same code as `facecli eval`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from facecli.embed import TorchEmbedder, embed_images
from facecli.models import FaceEmbedder
from facecli.runtime import Runtime
from facecli.verification.metrics import VerificationReport, verification_report
from facecli.verification.scoring import PairsInput, check_pairs, score_checked


class Validation:
    """The validation pairs, checked once; scored each epoch with the same code as `facecli eval`."""

    def __init__(self, pairs: Path, root: Path, runtime: Runtime, batch_size: int, workers: int) -> None:
        self.checked = check_pairs(PairsInput(pairs, root))
        self.runtime = dataclasses.replace(runtime, compile=False)
        self.batch_size, self.workers = batch_size, workers

    def __call__(self, model: FaceEmbedder) -> VerificationReport:
        model.eval()
        embedder = TorchEmbedder(model, self.runtime)
        scored = score_checked(
            self.checked,
            lambda files: (embed_images(embedder, files, self.batch_size, self.workers), len(files)),
            "cosine",
        )
        model.train()
        return verification_report(scored.scores, self.checked.pairs.labels, "cosine", self.checked.pairs.folds)
