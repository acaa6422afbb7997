"""`facecli compare A B`: are these the same person? Images or folders, raw photos or crops."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facecli.data.images import image_files
from facecli.embed import EmbedOptions
from facecli.embed.auto_backend import open_model
from facecli.embed.backends import Embedder
from facecli.embed.faces import FaceCrops
from facecli.embed.files import check_finite
from facecli.fileio import check_writable
from facecli.numbers import check_threshold


@dataclass
class CompareResult:
    """Scores of every (a, b) image pair, the decision at the threshold when there is one."""

    pairs: list[tuple[Path, Path]]
    scores: np.ndarray  # cosine similarity of the L2-normalised embeddings
    threshold: float | None
    threshold_source: str  # "--threshold", "the model's calibrated threshold" or "none"
    faces: dict[Path, int] = field(default_factory=dict)  # faces found per photo (detected ones)
    crops: dict[Path, np.ndarray] = field(default_factory=dict)  # what the model saw, per photo

    @property
    def same(self) -> np.ndarray | None:
        return None if self.threshold is None else self.scores > self.threshold

    def rows(self) -> list[dict]:
        same = self.same
        return [
            {"a": str(a), "b": str(b), "score": float(s), "metric": "cosine",
             "same": None if same is None else bool(same[n]), "threshold": self.threshold}
            for n, ((a, b), s) in enumerate(zip(self.pairs, self.scores, strict=True))
        ]  # fmt: skip


def _threshold(model: Embedder, given: float | None) -> tuple[float | None, str]:
    if given is not None:
        return given, "--threshold"
    config = model.config
    if config.threshold is not None and config.threshold_metric == "cosine":
        return config.threshold, "the model's calibrated threshold"
    return None, "none"


def compare(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str],
    *,
    checkpoint: str | os.PathLike[str],
    embedding: EmbedOptions,
    all_faces: bool = False,
    threshold: float | None = None,
    show: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> CompareResult:
    """Embed each image once (aligned as `embedding.align` says) and score every image of A against every image
    of B."""
    if threshold is not None:
        check_threshold(threshold, "cosine")
    check_writable(show, force=force)
    left, right = image_files(a), image_files(b)
    model = open_model(Path(checkpoint), embedding.backend, embedding.runtime)
    crops_of = FaceCrops(model.config, embedding.align, embedding.template)
    vectors: dict[Path, np.ndarray] = {}
    result = CompareResult([], np.zeros(0), *_threshold(model, threshold))
    for path in dict.fromkeys(left + right):
        crops = crops_of(path)
        kept = crops if all_faces else crops[:1]
        result.faces[path], result.crops[path] = len(crops), kept[0]
        vectors[path] = model.embed(model.config.preprocessing.batch(kept), bool(embedding.flip))
        check_finite(vectors[path], checkpoint, lambda row, path=path: path)
    scores = []
    for x in left:
        for y in right:
            result.pairs.append((x, y))
            scores.append(float((vectors[x] @ vectors[y].T).max()))  # with --all-faces: the best-matching faces
    result.scores = np.array(scores)
    if show is not None:
        from facecli.plots import comparison_figure

        x, y = result.pairs[0]
        same = result.same
        comparison_figure(
            result.crops[x], result.crops[y], result.scores[0], None if same is None else bool(same[0]), Path(show)
        )
    return result
