"""Embeddings of image files with a model file: each image once, from the cache where possible."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecli.embed.auto_backend import open_model
from facecli.embed.backends import Backend
from facecli.embed.cache import EmbeddingCache, file_hash, image_key
from facecli.embed.crops import aligned_files
from facecli.embed.faces import FaceCrops
from facecli.embed.loader import embed_images
from facecli.errors import FaceCliError
from facecli.runtime import Runtime

MEMMAP_ROWS = 20_000  # more embeddings than this live in a memory-mapped file, not on the heap


@dataclass
class EmbedOptions:
    """How to turn images into embeddings."""

    runtime: Runtime
    backend: Backend = "auto"  # ONNX Runtime on CPUs where it is faster (embed/auto_backend.py)
    batch_size: int | None = None  # None: the backend's preferred batch (backends.py)
    workers: int | None = None
    flip: bool | None = None  # None: off (identification: as the gallery was built)
    cache_dir: Path | None = None
    align: str = "never"  # raw photos: "auto" or "always" detect and align them first (embed/crops.py)
    template: str | None = None  # the alignment template (default: from the model's input size)


def embedding_array(rows: int, size: int) -> np.ndarray:
    """A float32 (rows, size) array; past MEMMAP_ROWS rows, memory-mapped on an anonymous temporary file."""
    if rows <= MEMMAP_ROWS:
        return np.empty((rows, size), np.float32)
    with tempfile.TemporaryFile(prefix="facecli-embeddings-") as backing:  # unlinked at once; the map keeps it
        return np.memmap(backing, np.float32, "w+", shape=(rows, size))


@dataclass
class Embedded:
    """Embeddings of a list of files (row i: file i) and, for a model with a quality score, each face's quality."""

    vectors: np.ndarray
    embedded: int  # how many went through the model; the rest came from the cache
    quality: np.ndarray | None = None


def embed_files(checkpoint: Path, files: list[Path], opts: EmbedOptions) -> Embedded:
    """Embeddings of `files` (each once), from the cache where possible, with their quality where the model has
    a quality score (the cache keeps it as one more column)."""
    model = open_model(Path(checkpoint), opts.backend, opts.runtime)
    if opts.align != "never":
        files = aligned_files(files, FaceCrops(model.config, opts.align, opts.template))
    size, scored = model.config.embedding_size, model.config.quality is not None
    cache = EmbeddingCache(opts.cache_dir, file_hash(checkpoint)) if opts.cache_dir else None
    flip = bool(opts.flip)
    keys = [image_key(f, flip) for f in files] if cache is not None else []
    known = {k: row for k, row in cache.get(keys).items() if len(row) == size + scored} if cache is not None else {}
    todo = [i for i, k in enumerate(keys) if k not in known] if cache is not None else list(range(len(files)))
    out = embedding_array(len(files), size)
    quality = np.empty(len(files), np.float32) if scored else None
    for i, k in enumerate(keys):
        if k in known:
            out[i] = known[k][:size]
            if quality is not None:
                quality[i] = known[k][size]
    if todo and len(todo) == len(files):  # nothing cached: embed straight into `out`, no second copy
        embed_images(model, files, opts.batch_size, opts.workers, flip, out, quality=quality)
    elif todo:
        part = None if quality is None else np.empty(len(todo), np.float32)
        out[todo] = embed_images(model, [files[i] for i in todo], opts.batch_size, opts.workers, flip, quality=part)
        if quality is not None:
            quality[todo] = part
    check_finite(out, checkpoint, files.__getitem__)  # never cached, never scored: NaN would read as missing
    if todo and cache is not None:
        rows = out[todo] if quality is None else np.hstack([out[todo], quality[todo, None]])
        cache.put([keys[i] for i in todo], rows)
    return Embedded(out, len(todo), quality)


def check_finite(vectors: np.ndarray, model: object, name_of: Callable[[int], object], chunk: int = 65536) -> None:
    """A one-line error naming `model` and the first image (`name_of(row)`) whose embedding holds a NaN or inf;
    checked a chunk at a time, so a memory-mapped array stays off the heap."""
    for start in range(0, len(vectors), chunk):
        finite = np.isfinite(vectors[start : start + chunk]).all(axis=1)
        if not finite.all():
            raise FaceCliError(
                f"{model}: the model's embedding of {name_of(start + int(np.argmin(finite)))} is not finite "
                "(NaN or inf); its weights are damaged or training diverged"
            )
