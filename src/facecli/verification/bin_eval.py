"""`facecli eval --bin lfw.bin`: insightface's verification on its own .bin sets — pairs (2i, 2i+1) in order,
L2 distances of the normalised embeddings (with `--flip`, of the image plus its mirror image), 10 folds in
order, thresholds 0 to 4 in steps of 0.01, as insightface's verification.py computes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facecli.data.bin_sets import BinSet, read_bin
from facecli.data.images import ImageError, decode
from facecli.embed import EmbedOptions
from facecli.embed.auto_backend import open_model
from facecli.embed.backends import Embedder
from facecli.embed.files import check_finite
from facecli.errors import FaceCliError
from facecli.verification.scores_file import ScoresFile


def score_bin(checkpoint: Path, path: Path, embedding: EmbedOptions) -> tuple[ScoresFile, int]:
    """Each pair's score (minus the L2 distance) and label; returns them and the images embedded."""
    data = read_bin(path)
    model = open_model(Path(checkpoint), embedding.backend, embedding.runtime)
    return score_bin_set(model, data, embedding.batch_size, bool(embedding.flip)), len(data.images)


def score_bin_set(model: Embedder, data: BinSet, batch_size: int | None, flip: bool) -> ScoresFile:
    """A read .bin set scored by `model` (also each epoch of `train --val-bin`)."""
    batch_size = batch_size or model.preferred_batch
    vectors = np.empty((len(data.images), model.config.embedding_size), np.float32)
    for start in range(0, len(data.images), batch_size):
        decoded = []
        for n, encoded in enumerate(data.images[start : start + batch_size], start):
            try:
                decoded.append(decode(encoded))
            except ImageError as exc:
                raise FaceCliError(f"{data.source} image {n} (pair {n // 2}): {exc}") from None
        vectors[start : start + len(decoded)] = model.embed(model.config.preprocessing.batch(decoded), flip)
    check_finite(vectors, data.source, lambda n: f"image {n} (pair {n // 2})")
    distances = np.linalg.norm(vectors[0::2] - vectors[1::2], axis=1)
    labels = np.array(data.issame, np.int64)
    return ScoresFile(-distances.astype(np.float64), labels, None, "euclidean")
