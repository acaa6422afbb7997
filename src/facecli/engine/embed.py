"""Embed a list of images once each, in batches, with a DataLoader that keeps the model busy."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from facecli.data.images import ImageError, read_image
from facecli.data.transforms import to_tensor
from facecli.errors import FaceCliError
from facecli.models import FaceEmbedder, ModelConfig
from facecli.runtime import Runtime


class ImageFiles(Dataset):
    """Decoded, preprocessed images; a failure is returned as a reason instead of raised in a worker."""

    def __init__(self, paths: Sequence[Path], config: ModelConfig) -> None:
        self.paths = list(paths)
        self.config = config

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        c = self.config
        try:
            image = read_image(self.paths[index])
        except ImageError as exc:
            return torch.zeros(3, *c.input_size), str(exc)
        return to_tensor(image, c.input_size, c.mean, c.std, c.channel_order, c.resize), ""


def default_workers() -> int:
    """Loader processes: all cores but one for the model, at most 8."""
    return max(0, min(8, (os.cpu_count() or 1) - 1))


def embed_images(
    model: FaceEmbedder,
    paths: Sequence[Path],
    runtime: Runtime,
    batch_size: int = 64,
    workers: int | None = None,
    flip: bool = False,
) -> np.ndarray:
    """(N, E) float32 L2-normalised embeddings; with `flip`, of the image plus its mirror image."""
    config = model.config
    net = runtime.prepare(model.eval())
    workers = default_workers() if workers is None else workers
    loader = DataLoader(
        ImageFiles(paths, config),
        batch_size=batch_size,
        num_workers=workers,
        pin_memory=runtime.device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if workers else None,
    )
    out = np.empty((len(paths), config.embedding_size), np.float32)
    start = 0
    with torch.inference_mode():
        for batch, errors in loader:
            for offset, reason in enumerate(errors):
                if reason:
                    raise FaceCliError(f"{paths[start + offset]}: {reason}")
            x = runtime.batch(batch)
            with runtime.autocast():
                if flip:
                    both = net(torch.cat([x, x.flip(3)]))
                    emb = both[: len(x)].float() + both[len(x) :].float()
                else:
                    emb = net(x).float()
            out[start : start + len(x)] = F.normalize(emb, dim=1).cpu().numpy()
            start += len(x)
    return out
