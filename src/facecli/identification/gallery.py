"""A gallery: per-image embeddings of known identities, searched 1:N with faiss, stored in one .npz file."""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facecli.errors import FaceCliError
from facecli.fileio import atomic_path
from facecli.numbers import Bound, check_number

META_FIELDS = ("checkpoint", "model_hash", "template", "index_type", "nlist", "nprobe", "flip")


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
    flip: bool = False
    _index: object = field(default=None, repr=False)
    _labels: list[str] = field(default_factory=list, repr=False)

    def add(self, embeddings: np.ndarray, identities: list[str], paths: list[str]) -> None:
        """Append images; the search structures are rebuilt (IVF retrained) when next used or saved."""
        self.embeddings = np.concatenate([self.embeddings, embeddings])
        self.identities = [*self.identities, *identities]
        self.paths = [*self.paths, *paths]
        self._index = None

    def remove(self, identities: list[str]) -> None:
        """Drop every image of `identities`; a name not in the gallery is an error, and nothing is dropped."""
        unknown = sorted(set(identities) - set(self.identities))
        if unknown:
            raise FaceCliError(f"no identity {', '.join(unknown)} in the gallery")
        keep = [i for i, name in enumerate(self.identities) if name not in set(identities)]
        self.embeddings = self.embeddings[keep]
        self.identities = [self.identities[i] for i in keep]
        self.paths = [self.paths[i] for i in keep]
        self._index = None

    def check_ivf_size(self, identities: list[str]) -> int:
        """The IVF lists for a gallery of these images' `identities` (one entry per image, or per identity with the
        mean template); refuses more lists than entries, which faiss cannot train."""
        entries = len(set(identities)) if self.template == "mean" else len(identities)
        nlist = self.nlist or max(1, int(4 * np.sqrt(entries)))
        if entries < nlist:
            raise FaceCliError(
                f"an IVF index with {nlist} lists needs at least that many entries (the gallery would have {entries}); "
                "use --index-type flat"
            )
        return nlist

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
            nlist = self.check_ivf_size(self.identities)
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
        meta = {k: getattr(self, k) for k in META_FIELDS}
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
            with open(path, "rb") as f:
                if f.read(4) != b"PK\x03\x04":  # np.load would try to unpickle it, and say so
                    raise ValueError("facecli index writes a .npz archive; this file is not one")
            with np.load(path, allow_pickle=False) as data:
                meta = _checked_meta(path, json.loads(str(data["meta"])))
                gallery = cls(data["embeddings"], data["identities"].tolist(), data["paths"].tolist(), **meta)
                trained = data["faiss"] if "faiss" in data else np.zeros(0, np.uint8)
            if gallery.embeddings.ndim != 2 or not len(gallery.identities) == len(gallery.paths) == len(
                gallery.embeddings
            ):
                raise ValueError("its embeddings, identities and paths do not match")
            if len(trained):
                import faiss

                gallery._index = faiss.deserialize_index(trained)
                gallery._index.nprobe = min(gallery.nprobe, gallery._index.nlist)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError, zipfile.BadZipFile) as exc:
            reason = " ".join(str(exc).split()[:20]) or type(exc).__name__
            raise FaceCliError(f"{path}: damaged or not a facecli gallery index ({reason})") from None
        _check_rows(path, gallery.embeddings)
        if len(trained):
            gallery._labels = sorted(set(gallery.identities)) if gallery.template == "mean" else gallery.identities
        return gallery


# What a gallery file's metadata may hold, checked on open (a file that lies is named in one line)
META_NUMBERS = {"nlist": Bound(0, 1 << 20, integer=True), "nprobe": Bound(1, 1 << 20, integer=True)}
META_CHOICES = {"template": ("image", "mean"), "index_type": ("flat", "ivf")}


def _checked_meta(path: Path, meta: object) -> dict:
    where = f"{path}: gallery metadata"
    if not isinstance(meta, dict) or set(meta) - set(META_FIELDS):
        raise FaceCliError(f"{where} is not facecli's (expected the fields {', '.join(META_FIELDS)})")
    for name in ("checkpoint", "model_hash"):
        if not isinstance(meta.get(name), str):
            raise FaceCliError(f"{where}: {name} must be a string, got {meta.get(name)!r}")
    for name, bound in META_NUMBERS.items():
        if name in meta:
            meta[name] = check_number(name, meta[name], bound, where)
    for name, allowed in META_CHOICES.items():
        if name in meta and meta[name] not in allowed:
            raise FaceCliError(f"{where}: {name} must be one of {', '.join(allowed)}, got {meta[name]!r}")
    if "flip" in meta and not isinstance(meta["flip"], bool):
        raise FaceCliError(f"{where}: flip must be true or false, got {meta['flip']!r}")
    return meta


def _check_rows(path: Path, embeddings: np.ndarray) -> None:
    if embeddings.dtype.kind != "f" or not 2 <= embeddings.shape[1] <= 65536:
        raise FaceCliError(f"{path}: damaged: embeddings of {embeddings.dtype} x {embeddings.shape[1]} dimensions")
    if not np.isfinite(embeddings).all():
        raise FaceCliError(f"{path}: damaged: its embeddings hold NaN or inf")
