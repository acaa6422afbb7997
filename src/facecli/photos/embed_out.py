"""`facecli embed`: embeddings of a folder or a list of images in a file, for the user's own clustering,
deduplication or search, and optionally a 2-D map of them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from facecli.data.images import image_files
from facecli.embed import EmbedOptions, embed_files
from facecli.errors import FaceCliError, unknown_choice
from facecli.fileio import atomic_path, check_plot_file, check_writable, read_text

OUTPUTS = (".npy", ".parquet")
PROJECTIONS = ("pca", "tsne")
PROJECTOR_THUMBNAILS = 10_000


@dataclass
class EmbedResult:
    """What was written."""

    out: Path
    paths: list[Path]
    identities: list[str]
    embeddings: np.ndarray
    table: Path | None  # the CSV of paths beside a .npy
    quality: np.ndarray | None = None  # per image, for a model with a quality score (a column of the table)


def _inputs(source: Path) -> tuple[list[Path], list[str]]:
    """Images and their identity: the folder they sit in (relative), or a list's `id;path` (or `path`) lines."""
    if source.is_dir():
        files = image_files(source)
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


def embed_to_file(
    source: str | os.PathLike[str],
    *,
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    embedding: EmbedOptions,
    plot: str | os.PathLike[str] | None = None,
    projection: str = "pca",
    tensorboard: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> EmbedResult:
    """Write one embedding per image to `out` (.npy with a .csv of paths beside it, or .parquet); raw photos
    are aligned first as `embedding.align` says."""
    out, checkpoint = Path(out), Path(checkpoint)
    if out.suffix not in OUTPUTS:
        raise FaceCliError(f"{out}: write embeddings to a .npy (with a .csv of paths beside it) or a .parquet file")
    if projection not in PROJECTIONS:
        raise unknown_choice("projection", projection, PROJECTIONS)
    table = out.with_suffix(".csv") if out.suffix == ".npy" else None
    check_plot_file(plot)
    check_writable(out, table, plot, force=force, inputs=(source, checkpoint))
    if tensorboard is not None and Path(tensorboard).is_dir() and any(Path(tensorboard).iterdir()) and not force:
        raise FaceCliError(f"{tensorboard} already holds files (a projector?); pass --force to overwrite")
    if out.suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            needs = "writing Parquet needs pyarrow (pip install 'facecli[parquet]'), or use a .npy"
            raise FaceCliError(f"{out}: {needs}") from None
    files, names = _inputs(Path(source))
    found = embed_files(checkpoint, files, embedding)  # raw photos aligned first, as embedding.align says
    vectors = np.asarray(found.vectors, np.float32)
    rows = pd.DataFrame({"path": [str(p) for p in files], "identity": names})
    if found.quality is not None:
        rows["quality"] = found.quality
    if table is not None:  # both written before either replaces its old file: the pair stays a pair
        with atomic_path(out) as tmp, atomic_path(table) as tmp_table:
            with open(tmp, "wb") as f:  # a file object: given a name, np.save would add ".npy" to it
                np.save(f, vectors)
            rows.assign(row=range(len(rows))).to_csv(tmp_table, index=False)
    else:
        with atomic_path(out) as tmp:
            rows.assign(embedding=list(vectors)).to_parquet(tmp, index=False)
    if plot is not None:
        _plot(vectors, names, Path(plot), projection)
    if tensorboard is not None:
        _projector(vectors, names, files, Path(tensorboard))
    return EmbedResult(out, files, names, vectors, table, found.quality)


def _projector(vectors: np.ndarray, names: list[str], files: list[Path], folder: Path) -> None:
    """TensorBoard's embedding projector: the vectors, each image's identity and path, and thumbnails."""
    import cv2
    import torch
    from torch.utils.tensorboard import SummaryWriter

    from facecli.data.images import ImageError, read_image

    thumbnails = None
    if len(files) <= PROJECTOR_THUMBNAILS:  # the projector's sprite holds at most 8192 x 8192 pixels
        images = []
        for path in files:
            try:
                images.append(cv2.resize(read_image(path), (32, 32), interpolation=cv2.INTER_AREA))
            except ImageError:
                images.append(np.zeros((32, 32, 3), np.uint8))
        thumbnails = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    metadata = [[name or "-", str(path)] for name, path in zip(names, files, strict=True)]
    with SummaryWriter(str(folder)) as writer:
        writer.add_embedding(
            torch.from_numpy(vectors), metadata=metadata, metadata_header=["identity", "path"], label_img=thumbnails
        )


def _plot(vectors: np.ndarray, names: list[str], path: Path, projection: str) -> None:
    from facecli.plots import embedding_map

    if vectors.shape[1] == 2:
        embedding_map(vectors, names, "embeddings (2-D, on the unit circle)", path)
        return
    if len(vectors) <= 2:
        points, title = vectors[:, :2], "embeddings, first two dimensions"
    elif projection == "tsne":
        from sklearn.manifold import TSNE

        tsne = TSNE(n_components=2, perplexity=min(30.0, (len(vectors) - 1) / 3), init="pca", random_state=0)
        points, title = tsne.fit_transform(vectors), f"embeddings of {vectors.shape[1]} dimensions, t-SNE"
    else:
        from sklearn.decomposition import PCA

        points = PCA(n_components=2).fit_transform(vectors)
        title = f"embeddings, first two principal components of {vectors.shape[1]}"
    embedding_map(points, names, title, path)
