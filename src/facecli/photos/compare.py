"""`facecli compare A B`: are these the same person? Images or folders, raw photos or crops."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facecli.data.images import image_files
from facecli.embed import EmbedOptions
from facecli.embed.auto_backend import open_model
from facecli.embed.backends import Embedder, model_config
from facecli.embed.faces import FaceCrops
from facecli.embed.files import check_finite
from facecli.embed.quality import check_min_quality, low_quality
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
    quality: list[tuple[float, float] | None] = field(default_factory=list)  # per pair, its two faces' quality
    refused: list[str | None] = field(default_factory=list)  # per pair, why it was not decided (--min-quality)

    @property
    def same(self) -> np.ndarray | None:
        """Per pair, same person at the threshold; a refused pair is not the same."""
        if self.threshold is None:
            return None
        return (self.scores > self.threshold) & np.array([reason is None for reason in self.refused], bool)

    def rows(self) -> list[dict]:
        same = self.same
        return [
            {"a": str(a), "b": str(b), "score": float(s), "metric": "cosine",
             "same": None if same is None or refused else bool(same[n]), "threshold": self.threshold,
             "quality_a": quality and quality[0], "quality_b": quality and quality[1], "refused": refused}
            for n, ((a, b), s, quality, refused)
            in enumerate(zip(self.pairs, self.scores, self.quality, self.refused, strict=True))
        ]  # fmt: skip


def _threshold(model: Embedder, given: float | None) -> tuple[float | None, str]:
    if given is not None:
        return given, "--threshold"
    calibrated = model.config.threshold_for("cosine")
    return (calibrated, "the model's calibrated threshold") if calibrated is not None else (None, "none")


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
    min_quality: float | None = None,
) -> CompareResult:
    """Embed each image once (aligned as `embedding.align` says) and score every image of A against every image
    of B; with `min_quality`, a pair with a face under it is refused, not decided."""
    if threshold is not None:
        check_threshold(threshold, "cosine")
    check_writable(show, force=force, inputs=(a, b, checkpoint))
    check_min_quality(min_quality, model_config(checkpoint, embedding.backend), checkpoint)
    left, right = image_files(a), image_files(b)
    model = open_model(Path(checkpoint), embedding.backend, embedding.runtime)
    crops_of = FaceCrops(model.config, embedding.align, embedding.template)
    faces: dict[Path, tuple[np.ndarray, np.ndarray]] = {}  # per photo, its faces' embeddings and quality
    result = CompareResult([], np.zeros(0), *_threshold(model, threshold))
    for path in dict.fromkeys(left + right):
        crops = crops_of(path)
        kept = crops if all_faces else crops[:1]
        result.faces[path], result.crops[path] = len(crops), kept[0]
        faces[path] = model.embed_scored(model.config.preprocessing.batch(kept), bool(embedding.flip))
        check_finite(faces[path][0], checkpoint, lambda row, path=path: path)
    scores = []
    for x in left:
        for y in right:
            similarity = faces[x][0] @ faces[y][0].T  # with --all-faces: the best-matching faces
            i, j = np.unravel_index(int(np.argmax(similarity)), similarity.shape)
            result.pairs.append((x, y))
            scores.append(float(similarity[i, j]))
            if model.config.quality is None:
                result.quality.append(None)
                result.refused.append(None)
                continue
            quality = (float(faces[x][1][i]), float(faces[y][1][j]))
            result.quality.append(quality)
            reasons = [
                f"{p}: {why}" for p, q in zip((x, y), quality, strict=True) if (why := low_quality(q, min_quality))
            ]
            result.refused.append("; ".join(reasons) or None)
    result.scores = np.array(scores)
    if show is not None:
        from facecli.plots import comparison_figure

        x, y = result.pairs[0]
        same = result.same
        comparison_figure(
            result.crops[x], result.crops[y], result.scores[0], None if same is None else bool(same[0]), Path(show)
        )
    return result
