"""`facecli index`, `identify`, `eval-identify`: 1:N search of a gallery of known identities with faiss."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facecli.checkpoint import load
from facecli.data.images import is_image_file
from facecli.data.scan import scan_dataset
from facecli.engine.backends import TorchEmbedder
from facecli.engine.cache import file_hash
from facecli.engine.embed import embed_images
from facecli.errors import FaceCliError
from facecli.fileio import atomic_path, check_writable
from facecli.runtime import Runtime

UNKNOWN = "unknown"


@dataclass
class Gallery:
    """Per-image embeddings with identity labels, the model they came from, and the search settings."""

    embeddings: np.ndarray
    identities: list[str]
    paths: list[str]
    checkpoint: str
    model_hash: str
    template: str = "image"
    index_type: str = "flat"
    nlist: int = 0
    nprobe: int = 32
    _index: object = field(default=None, repr=False)
    _labels: list[str] = field(default_factory=list, repr=False)

    def _build(self) -> None:
        import faiss

        vectors, labels = self.embeddings, self.identities
        if self.template == "mean":
            labels = sorted(set(self.identities))
            rows = {name: [] for name in labels}
            for i, name in enumerate(self.identities):
                rows[name].append(i)
            vectors = np.stack([self.embeddings[rows[name]].mean(0) for name in labels])
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.index_type == "ivf":
            nlist = self.nlist or max(1, int(4 * np.sqrt(len(vectors))))
            if len(vectors) < nlist:
                raise FaceCliError(
                    f"an IVF index with {nlist} lists needs at least that many entries; use --index-type flat"
                )
            index = faiss.IndexIVFFlat(
                faiss.IndexFlatIP(vectors.shape[1]), vectors.shape[1], nlist, faiss.METRIC_INNER_PRODUCT
            )
            index.train(vectors)
            index.nprobe = min(self.nprobe, nlist)
        else:
            index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        self._index, self._labels = index, labels

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, list[list[str]]]:
        """Top-k distinct identities per query with their cosine scores (best image per identity)."""
        if self._index is None:
            self._build()
        hits = min(len(self._labels), k if self.template == "mean" else k * 20)
        scores, rows = self._index.search(np.ascontiguousarray(queries, dtype=np.float32), hits)
        top_scores = np.full((len(queries), k), -np.inf, np.float32)
        top_names: list[list[str]] = []
        for q in range(len(queries)):
            names: list[str] = []
            for score, row in zip(scores[q], rows[q], strict=True):
                if row < 0 or self._labels[row] in names:
                    continue
                top_scores[q, len(names)] = score
                names.append(self._labels[row])
                if len(names) == k:
                    break
            top_names.append(names)
        return top_scores, top_names

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically; a trained IVF index is stored too, so opening never retrains it."""
        import faiss

        if self.index_type == "ivf" and self._index is None:
            self._build()  # trains it; a flat index is rebuilt on open instead of stored
        meta = {k: getattr(self, k) for k in ("checkpoint", "model_hash", "template", "index_type", "nlist", "nprobe")}
        trained = faiss.serialize_index(self._index) if self.index_type == "ivf" else np.zeros(0, np.uint8)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(
                f,
                embeddings=self.embeddings,
                identities=np.array(self.identities, dtype=str),
                paths=np.array(self.paths, dtype=str),
                meta=np.array(json.dumps(meta)),
                faiss=trained,
            )

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Gallery:
        path = Path(path)
        if not path.is_file():
            raise FaceCliError(f"{path}: no such gallery index (build one with facecli index)")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                gallery = cls(data["embeddings"], data["identities"].tolist(), data["paths"].tolist(), **meta)
                trained = data["faiss"] if "faiss" in data else np.zeros(0, np.uint8)
        except (OSError, ValueError, KeyError) as exc:
            raise FaceCliError(f"{path}: not a facecli gallery index ({exc})") from None
        if len(trained):
            import faiss

            gallery._index = faiss.deserialize_index(trained)
            gallery._index.nprobe = min(gallery.nprobe, gallery._index.nlist)
            gallery._labels = sorted(set(gallery.identities)) if gallery.template == "mean" else gallery.identities
        return gallery


def _embedder(checkpoint: str | os.PathLike[str], runtime: Runtime, expected_hash: str | None = None) -> tuple:
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FaceCliError(f"{checkpoint}: no such model file (pass --checkpoint)")
    digest = file_hash(checkpoint)
    if expected_hash is not None and digest != expected_hash:
        raise FaceCliError(
            f"{checkpoint} is not the model this gallery was built with (hash {expected_hash}); "
            "rebuild the gallery or pass the right --checkpoint"
        )
    return TorchEmbedder(load(checkpoint), runtime), digest


def _scan_gallery(folder: str | os.PathLike[str], workers: int) -> tuple[list[Path], list[str], int]:
    scan = scan_dataset(folder, workers=workers)
    files = [f for name in scan.identities for f in scan.images[name]]
    names = [name for name in scan.identities for _ in scan.images[name]]
    return files, names, len(scan.bad_images)


def build_index(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    runtime: Runtime,
    gallery_dir: str | os.PathLike[str] | None = None,
    add: str | os.PathLike[str] | None = None,
    remove: list[str] | None = None,
    template: str = "image",
    index_type: str = "flat",
    nlist: int = 0,
    batch_size: int = 64,
    workers: int | None = None,
    force: bool = False,
    nprobe: int = 32,
) -> tuple[Gallery, int, int]:
    """Build a gallery from an image-folder dataset, or change an existing one (--add, --remove).

    Returns the gallery, the number of images embedded, and the number of unreadable images skipped.
    """
    if template not in ("image", "mean") or index_type not in ("flat", "ivf"):
        raise FaceCliError("--template must be image or mean, and --index-type flat or ivf")
    if gallery_dir is not None:
        check_writable(out, force=force)
        embedder, digest = _embedder(checkpoint, runtime)
        gallery = Gallery(
            np.zeros((0, embedder.config.embedding_size), np.float32),
            [],
            [],
            str(Path(checkpoint).resolve()),
            digest,
            template,
            index_type,
            nlist,
            nprobe,
        )  # type: ignore[arg-type]
        source = gallery_dir
    else:
        gallery = Gallery.open(out)
        embedder, _ = _embedder(checkpoint or gallery.checkpoint, runtime, gallery.model_hash)
        source = add
    skipped = embedded = 0
    if remove:
        unknown = sorted(set(remove) - set(gallery.identities))
        if unknown:
            raise FaceCliError(f"{out}: no identity {', '.join(unknown)} in the gallery")
        dropped = set(remove)
        keep = [i for i, name in enumerate(gallery.identities) if name not in dropped]
        gallery.embeddings = gallery.embeddings[keep]
        gallery.identities = [gallery.identities[i] for i in keep]
        gallery.paths = [gallery.paths[i] for i in keep]
    if source is not None:
        files, names, skipped = _scan_gallery(source, workers or 4)
        known = set(gallery.paths)
        resolved = [str(f.resolve()) for f in files]
        new = [i for i, path in enumerate(resolved) if path not in known]
        if new:
            vectors = embed_images(embedder, [files[i] for i in new], batch_size, workers)
            gallery.embeddings = np.concatenate([gallery.embeddings, vectors])
            gallery.identities += [names[i] for i in new]
            gallery.paths += [resolved[i] for i in new]
            embedded = len(new)
    if not gallery.identities:
        raise FaceCliError(f"{source or out}: the gallery has no usable images")
    gallery._index = None  # contents changed: search structures are rebuilt (IVF retrained) on save
    gallery.save(out)
    return gallery, embedded, skipped


def _query_files(query: str | os.PathLike[str]) -> list[Path]:
    query = Path(query)
    if query.is_file():
        if not is_image_file(query):
            raise FaceCliError(f"{query}: not an image (expected one of jpg, jpeg, png, bmp, webp, pgm)")
        return [query]
    if query.is_dir():
        files = sorted(p for p in query.rglob("*") if p.is_file() and is_image_file(p))
        if not files:
            raise FaceCliError(f"{query}: no images in this folder")
        return files
    raise FaceCliError(f"{query}: no such file or folder")


def identify(
    index: str | os.PathLike[str],
    query: str | os.PathLike[str],
    out: str | os.PathLike[str],
    runtime: Runtime,
    top_k: int = 5,
    threshold: float | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    workers: int | None = None,
    force: bool = False,
):  # noqa: ANN201
    """Top-k identities per query image, `unknown` when the best score is under the threshold; writes a CSV."""
    import pandas as pd

    check_writable(out, force=force)
    gallery = Gallery.open(index)
    embedder, _ = _embedder(checkpoint or gallery.checkpoint, runtime, gallery.model_hash)
    files = _query_files(query)
    scores, names = gallery.search(embed_images(embedder, files, batch_size, workers), top_k)
    rows = []
    for file, row_scores, row_names in zip(files, scores, names, strict=True):
        best = row_names[0] if threshold is None or row_scores[0] >= threshold else UNKNOWN
        row = {"query": str(file), "identity": best, "score": round(float(row_scores[0]), 6)}
        for rank in range(top_k):
            row[f"top{rank + 1}"] = row_names[rank] if rank < len(row_names) else ""
            row[f"score{rank + 1}"] = round(float(row_scores[rank]), 6) if rank < len(row_names) else np.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False)
    return table


@dataclass
class IdentificationReport:
    """Closed-set ranks and open-set detection-and-identification rates."""

    probes_known: int
    probes_unknown: int
    rank1: float
    rank5: float
    cmc: list[float]
    dir_at_far: dict[str, float]


def evaluate_identification(
    index: str | os.PathLike[str],
    probes: str | os.PathLike[str],
    runtime: Runtime,
    plot: str | os.PathLike[str] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    workers: int | None = None,
    force: bool = False,
) -> IdentificationReport:
    """Rank-1/rank-5 and a CMC curve on probes of gallery identities; DIR at FAR using probes of others."""
    check_writable(plot, force=force)
    gallery = Gallery.open(index)
    embedder, _ = _embedder(checkpoint or gallery.checkpoint, runtime, gallery.model_hash)
    files, names, _ = _scan_gallery(probes, workers or 4)
    if not files:
        raise FaceCliError(f"{probes}: no usable probe images")
    enrolled = set(gallery.identities)
    max_rank = min(20, len(enrolled))
    scores, ranked = gallery.search(embed_images(embedder, files, batch_size, workers), max_rank)
    known = np.array([n in enrolled for n in names])
    if not known.any():
        raise FaceCliError(f"{probes}: no probe identity is in the gallery, so ranks cannot be measured")
    hit_rank = np.array([r.index(n) + 1 if n in r else max_rank + 1 for n, r in zip(names, ranked, strict=True)])
    cmc = [float((hit_rank[known] <= k).mean()) for k in range(1, max_rank + 1)]
    dir_at_far = {}
    impostor_best = scores[~known, 0]
    for far in (0.1, 0.01):
        if len(impostor_best) >= round(1 / far):
            threshold = np.quantile(impostor_best, 1 - far, method="higher")
            dir_at_far[f"{far:g}"] = float(((hit_rank == 1) & (scores[:, 0] > threshold))[known].mean())
    if plot:
        from facecli.engine.plots import cmc_plot

        cmc_plot(cmc, plot)
    return IdentificationReport(
        int(known.sum()), int((~known).sum()), cmc[0], cmc[min(4, max_rank - 1)], cmc, dir_at_far
    )
