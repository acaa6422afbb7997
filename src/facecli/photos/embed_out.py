"""`facecli embed`: embeddings of a folder or a list of images in a file, for the user's own clustering,
deduplication or search, and optionally a 2-D map of them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from facecli.data.images import is_image_file
from facecli.embed import EmbedOptions, embed_files
from facecli.embed.auto_backend import open_model
from facecli.embed.backends import model_config
from facecli.errors import FaceCliError
from facecli.fileio import atomic_path, check_writable, read_text
from facecli.photos.faces import FaceCrops

OUTPUTS = (".npy", ".parquet")


@dataclass
class EmbedResult:
    """What was written."""

    out: Path
    paths: list[Path]
    identities: list[str]
    embeddings: np.ndarray
    table: Path | None  # the CSV of paths beside a .npy


def _inputs(source: Path) -> tuple[list[Path], list[str]]:
    """Images and their identity: the folder they sit in (relative), or a list's `id;path` (or `path`) lines."""
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and is_image_file(p))
        if not files:
            raise FaceCliError(f"{source}: no images in this folder")
        return files, [str(p.parent.relative_to(source)) if p.parent != source else "" for p in files]
    if not source.is_file():
        raise FaceCliError(f"{source}: no such folder or list of images")
    files, names = [], []
    for lineno, line in enumerate(read_text(source).splitlines(), 1):
        if not line.strip():
            continue
        name, _, path = line.strip().rpartition(";")
        image = Path(path) if Path(path).is_absolute() else source.parent / path
        if not image.is_file():
            raise FaceCliError(f"{source} line {lineno}: {image}: no such image")
        files.append(image)
        names.append(name)
    if not files:
        raise FaceCliError(f"{source}: no images listed")
    return files, names


def _already_crops(files: list[Path], size: tuple[int, int]) -> bool:
    """Every image has the model's input size (read from the headers)."""
    for path in files:
        try:
            with Image.open(path) as image:
                if (image.height, image.width) != size:
                    return False
        except OSError:
            return False  # the embedding step names it
    return True


def _embed_photos(files: list[Path], checkpoint: Path, embedding: EmbedOptions, crops: FaceCrops) -> np.ndarray:
    """Detect, align and embed photo by photo (the largest face of each)."""
    model = open_model(checkpoint, embedding.backend, embedding.runtime)
    rows = []
    for start in range(0, len(files), embedding.batch_size):
        batch = [model.config.preprocessing(crops(path)[0]) for path in files[start : start + embedding.batch_size]]
        rows.append(model.embed(torch.stack(batch), bool(embedding.flip)))
    return np.concatenate(rows)


def embed_to_file(
    source: str | os.PathLike[str],
    *,
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    embedding: EmbedOptions,
    align: str = "auto",
    template: str | None = None,
    plot: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> EmbedResult:
    """Write one embedding per image to `out` (.npy with a .csv of paths beside it, or .parquet)."""
    out, checkpoint = Path(out), Path(checkpoint)
    if out.suffix not in OUTPUTS:
        raise FaceCliError(f"{out}: write embeddings to a .npy (with a .csv of paths beside it) or a .parquet file")
    table = out.with_suffix(".csv") if out.suffix == ".npy" else None
    check_writable(out, table, plot, force=force)
    if out.suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise FaceCliError(f"{out}: writing Parquet needs pyarrow (pip install pyarrow), or use a .npy") from None
    files, names = _inputs(Path(source))
    config = model_config(checkpoint, embedding.backend)
    crops = FaceCrops(config, align, template)
    if align == "never" or (align == "auto" and _already_crops(files, config.input_size)):
        vectors, _ = embed_files(checkpoint, files, embedding)  # the loader's workers and the cache
    else:
        vectors = _embed_photos(files, checkpoint, embedding, crops)
    vectors = np.asarray(vectors, np.float32)
    rows = pd.DataFrame({"path": [str(p) for p in files], "identity": names})
    if table is not None:
        with atomic_path(out) as tmp, open(tmp, "wb") as f:
            np.save(f, vectors)
        with atomic_path(table) as tmp:
            rows.assign(row=range(len(rows))).to_csv(tmp, index=False)
    else:
        with atomic_path(out) as tmp:
            rows.assign(embedding=list(vectors)).to_parquet(tmp, index=False)
    if plot is not None:
        _plot(vectors, names, Path(plot))
    return EmbedResult(out, files, names, vectors, table)


def _plot(vectors: np.ndarray, names: list[str], path: Path) -> None:
    from facecli.plots import embedding_map

    if vectors.shape[1] == 2:
        embedding_map(vectors, names, "embeddings (2-D, on the unit circle)", path)
        return
    from sklearn.decomposition import PCA

    points = PCA(n_components=2).fit_transform(vectors) if len(vectors) > 2 else vectors[:, :2]
    embedding_map(points, names, f"embeddings, first two principal components of {vectors.shape[1]}", path)
