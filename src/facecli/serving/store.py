"""What a server's gallery holds and answers, whichever engine stores it: SQLite + faiss on one machine (a folder),
or Milvus beyond it (`milvus://HOST:PORT/COLLECTION`, or a Milvus Lite `.db` file)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecli.errors import FaceCliError

MILVUS_SCHEME = "milvus://"


@dataclass
class Subject:
    name: str
    faces: int
    created: float


@dataclass
class StoredFace:
    id: int
    subject: str
    quality: float | None
    created: float


@dataclass
class Match:
    subject: str
    face_id: int
    score: float  # cosine of the query and the subject's best face, computed exactly


def best_per_subject(scores: np.ndarray, ids: np.ndarray, subject_of: dict[int, str], k: int) -> list[Match]:
    """The k best distinct subjects among search hits (best first); hits of unknown id (-1, or deleted) skipped."""
    matches: list[Match] = []
    seen: set[str] = set()
    for score, face in zip(scores, ids, strict=True):
        subject = subject_of.get(int(face))
        if subject is None or subject in seen:
            continue
        seen.add(subject)
        matches.append(Match(subject, int(face), float(score)))
        if len(matches) == k:
            break
    return matches


def is_milvus(where: str) -> bool:
    """A Milvus address or Milvus Lite file, else a gallery folder."""
    return where.startswith(MILVUS_SCHEME) or where.endswith(".db")


def check_gallery_place(where: str | None) -> None:
    """Refuse, before the model loads, a gallery folder that is a file."""
    if where is not None and not is_milvus(where) and Path(where).exists() and not Path(where).is_dir():
        raise FaceCliError(f"{where}: a file, not a gallery folder (a Milvus Lite gallery is a file named *.db)")


def open_gallery(where: str, model_hash: str, embedding_size: int, reembed: bool = False):  # noqa: ANN201
    """The gallery at `where` (SqliteGallery or MilvusGallery): a folder (created when missing), or a Milvus address
    or Milvus Lite file. A gallery of another model is refused, unless `reembed`: its `stale_model` then names
    that model, and the caller embeds its stored crops again."""
    check_gallery_place(where)
    if is_milvus(where):
        from facecli.serving.milvus_gallery import MilvusGallery

        if reembed:
            raise FaceCliError("--reembed: Milvus galleries keep no crops; enrol their faces again")
        return MilvusGallery(where, model_hash, embedding_size)
    from facecli.serving.sqlite_gallery import SqliteGallery

    return SqliteGallery(where, model_hash, embedding_size, reembed)


def model_mismatch(where: str, stored: str | None, model_hash: str) -> FaceCliError:
    return FaceCliError(
        f"{where}: this gallery was built with model {stored}, the server's is {model_hash}; serve that model, or "
        "pass --reembed to embed the stored crops again"
    )
