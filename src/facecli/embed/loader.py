"""Embed a list of images once each, in batches, with a DataLoader that keeps the model busy."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from facecli.data.images import ImageError, read_image
from facecli.data.transforms import Preprocessing
from facecli.data.workers import default_workers, init_worker, worker_start
from facecli.embed.backends import Embedder
from facecli.errors import FaceCliError


class ImageFiles(Dataset):
    """Decoded images at the model's size, uint8 (normalised by the batch in the main process); a failure is
    returned as a reason instead of raised in a worker."""

    def __init__(self, paths: Sequence[Path], preprocessing: Preprocessing) -> None:
        self.paths = list(paths)
        self.preprocessing = preprocessing

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        try:
            image = read_image(self.paths[index])
        except ImageError as exc:
            return self.preprocessing.blank(), str(exc)
        return self.preprocessing.pixels(image), ""


def embed_images(
    embedder: Embedder,
    paths: Sequence[Path],
    batch_size: int | None = None,
    workers: int | None = None,
    flip: bool = False,
    out: np.ndarray | None = None,
    failed: list[tuple[Path, str]] | None = None,
    quality: np.ndarray | None = None,
) -> np.ndarray:
    """(N, E) float32 L2-normalised embeddings; with `flip`, of the image plus its mirror image.

    `batch_size` None takes the embedder's preferred batch. Batches are written into `out` when given (a
    memory-mapped array keeps large runs off the heap). An image that fails to decode is an error, or, when
    a `failed` list is given, recorded there with a row of NaN. Each face's quality score (the feature norm) is
    written into `quality` when given.
    """
    config = embedder.config
    workers = default_workers() if workers is None else workers
    loader = DataLoader(
        ImageFiles(paths, config.preprocessing),
        batch_size=batch_size or embedder.preferred_batch,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        prefetch_factor=4 if workers else None,
        worker_init_fn=init_worker,
        multiprocessing_context=worker_start(workers),
    )
    out = np.empty((len(paths), config.embedding_size), np.float32) if out is None else out
    start = 0
    for batch, errors in loader:
        bad = [offset for offset, reason in enumerate(errors) if reason]
        if bad and failed is None:
            raise FaceCliError(f"{paths[start + bad[0]]}: {errors[bad[0]]}")
        vectors, norms = embedder.embed_scored(config.preprocessing.normalize(batch), flip)
        out[start : start + len(batch)] = vectors
        if quality is not None:
            quality[start : start + len(batch)] = norms
        for offset in bad:
            failed.append((paths[start + offset], errors[offset]))
            out[start + offset] = np.nan
        start += len(batch)
    return out
