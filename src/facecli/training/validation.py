"""Validation during training: the pairs checked once, scored each epoch with the same code as `facecli eval`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from facecli.data.bin_sets import read_bin
from facecli.embed import Embedded, TorchEmbedder, embed_images
from facecli.models import FaceEmbedder
from facecli.runtime import Runtime
from facecli.verification.bin_eval import score_bin_set
from facecli.verification.metrics import VerificationReport, verification_report
from facecli.verification.scoring import PairsInput, check_pairs, score_checked

IN_PROCESS_BELOW = 1000  # validation images


class Validation:
    """The validation pairs, checked once; scored each epoch with the same code as `facecli eval`.

    An image that fails to decode mid-run (changed since the check) leaves its pairs out of that epoch's
    score instead of stopping the run; `note` then says how many.
    """

    def __init__(
        self, pairs: Path | None, root: Path | None, runtime: Runtime, batch_size: int | None, workers: int,
        bin_set: Path | None = None,
    ) -> None:  # fmt: skip
        self.bin = read_bin(bin_set) if bin_set is not None else None  # insightface's set, scored its own way
        self.checked = check_pairs(PairsInput(pairs=pairs, root=root)) if pairs is not None else None
        self.runtime = dataclasses.replace(runtime, compile=False)
        self.batch_size, self.workers = batch_size, workers
        self.note: str | None = None  # what the last validation left out, if anything

    def _workers(self) -> int:
        """Loader processes for one validation: none for a small set, whose images decode faster in this
        process than worker processes start (each validation starts its loader anew)."""
        return 0 if self.images < IN_PROCESS_BELOW else self.workers

    @property
    def images(self) -> int:
        """Images embedded per validation."""
        return len(self.bin.images) if self.bin is not None else len(self.checked.present)

    def __call__(self, model: FaceEmbedder) -> VerificationReport:
        """The model's report; the model is left exactly as it was (its mode per module, its memory format:
        the runtime is the training one), so a validated run resumes to the same weights."""
        modes = [(module, module.training) for module in model.modules()]
        try:
            return self._report(TorchEmbedder(model, self.runtime))
        finally:
            for module, training in modes:
                module.train(training)

    def _report(self, embedder: TorchEmbedder) -> VerificationReport:
        if self.bin is not None:
            scored = score_bin_set(embedder, self.bin, self.batch_size, flip=False)
            self.note = None
            return verification_report(scored.scores, scored.labels, "euclidean")
        failed: list[tuple[Path, str]] = []

        def embed(files: list[Path]) -> Embedded:
            return Embedded(embed_images(embedder, files, self.batch_size, self._workers(), failed=failed), len(files))

        scored = score_checked(self.checked, embed, "cosine")
        pairs, kept = self.checked.pairs, np.isfinite(scored.scores)
        self.note = None
        if failed:
            self.note = (
                f"validation: {len(failed)} image(s) failed to decode, {int((~kept).sum())} of {len(kept)} pairs "
                f"left out of this score; first {failed[0][0]}: {failed[0][1]}"
            )
        folds = pairs.folds[kept] if pairs.folds is not None else None
        return verification_report(scored.scores[kept], pairs.labels[kept], "cosine", folds)
