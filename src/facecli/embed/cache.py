"""Embedding cache keyed by model hash and image path + size + mtime, so repeat runs skip the model."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from facecli.fileio import atomic_path


def file_hash(path: str | os.PathLike[str]) -> str:
    """Short SHA-256 of a file's bytes (identifies a model)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def image_key(path: Path, flip: bool) -> str:
    """Changes whenever the image file changes."""
    stat = path.stat()
    return f"{path}|{stat.st_size}|{stat.st_mtime_ns}|flip={int(flip)}"


class EmbeddingCache:
    """One .npz per model in `cache_dir`: keys and embeddings, rewritten atomically."""

    def __init__(self, cache_dir: str | os.PathLike[str], model_hash: str) -> None:
        self.file = Path(cache_dir) / f"{model_hash}.npz"
        self.entries: dict[str, np.ndarray] = {}
        if self.file.is_file():
            with np.load(self.file) as data:
                self.entries = dict(zip(data["keys"].tolist(), data["embeddings"], strict=True))

    def get(self, keys: list[str]) -> dict[str, np.ndarray]:
        return {k: self.entries[k] for k in keys if k in self.entries}

    def put(self, keys: list[str], embeddings: np.ndarray) -> None:
        self.entries.update(zip(keys, embeddings, strict=True))
        with atomic_path(self.file) as tmp, open(tmp, "wb") as f:
            np.savez(f, keys=np.array(list(self.entries)), embeddings=np.stack(list(self.entries.values())))
