"""Embedding cache keyed by model hash and the image's real path + size + mtime + ctime, so repeat runs skip
the model and no two files share an entry: the path is resolved (the same relative name in another folder,
or a symlink, is the file it leads to), and ctime changes whenever the file is replaced, even by a copy
that keeps its size and mtime (`cp -p`, `rsync -a`).

A model's cache is a folder of shard files, each written once, atomically, under a name no other writer
uses: a put costs only its new entries, and any number of processes can read and write at once without
losing an entry or seeing half a file. Past MAX_SHARDS the shards are merged into one (the merged ones are
removed only after the merge is in place). A damaged shard is a warning: it is removed and its entries are
embedded again.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import time
import zipfile
from pathlib import Path

import numpy as np

from facecli.fileio import atomic_path

MAX_SHARDS = 32

log = logging.getLogger(__name__)


def file_hash(path: str | os.PathLike[str]) -> str:
    """Short SHA-256 of a file's bytes (identifies a model); read once per process while the file is unchanged
    (the gallery, the embedding cache and the automatic backend each ask for it)."""
    stat = os.stat(path)
    return _hash(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _hash(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def image_key(path: Path, flip: bool) -> str:
    """One file's key: changes whenever the file changes, and no other file has it."""
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ctime_ns}|flip={int(flip)}"


def _read_shard(path: Path) -> tuple[list[str], np.ndarray] | None:
    """A shard's keys and embeddings; None (with a warning, the file removed) when it is damaged."""
    try:
        with np.load(path, allow_pickle=False) as data:
            keys, embeddings = data["keys"].tolist(), data["embeddings"]
        if embeddings.ndim != 2 or len(keys) != len(embeddings) or not np.isfinite(embeddings).all():
            raise ValueError("keys and embeddings do not match")
    except FileNotFoundError:
        return None  # merged away by another process meanwhile
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        log.warning(f"{path}: damaged cache file ignored, its images are embedded again ({reason})")
        path.unlink(missing_ok=True)
        return None
    return keys, embeddings


class EmbeddingCache:
    """One folder per model in `cache_dir`, holding append-only shards of (keys, embeddings)."""

    def __init__(self, cache_dir: str | os.PathLike[str], model_hash: str) -> None:
        self.folder = Path(cache_dir) / model_hash
        self.rows: dict[str, tuple[int, int]] = {}  # key -> (shard, row)
        self.shards: list[np.ndarray] = []
        self.files = sorted(self.folder.glob("*.npz")) if self.folder.is_dir() else []
        for file in self.files:
            found = _read_shard(file)
            if found is not None:
                keys, embeddings = found
                self.rows.update((key, (len(self.shards), row)) for row, key in enumerate(keys))
                self.shards.append(embeddings)

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, keys: list[str]) -> dict[str, np.ndarray]:
        return {k: self.shards[self.rows[k][0]][self.rows[k][1]] for k in keys if k in self.rows}

    def put(self, keys: list[str], embeddings: np.ndarray) -> None:
        """Add entries in a new shard; merge the shards once there are too many."""
        name = f"{time.time_ns():020d}-{os.getpid()}-{os.urandom(4).hex()}.npz"
        self._write(self.folder / name, keys, np.asarray(embeddings, np.float32))
        self.rows.update((key, (len(self.shards), row)) for row, key in enumerate(keys))
        self.shards.append(np.asarray(embeddings, np.float32))
        self.files.append(self.folder / name)
        if len(self.files) > MAX_SHARDS:
            self._merge()

    def _merge(self) -> None:
        merged = self.folder / f"{time.time_ns():020d}-{os.getpid()}-merged.npz"
        keys = list(self.rows)
        self._write(merged, keys, np.stack([self.shards[s][r] for s, r in self.rows.values()]))
        for file in self.files:  # entries other processes added since are in shards not listed here, kept
            file.unlink(missing_ok=True)
        self.files = [merged]

    @staticmethod
    def _write(path: Path, keys: list[str], embeddings: np.ndarray) -> None:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, keys=np.array(keys, dtype=str), embeddings=embeddings)
