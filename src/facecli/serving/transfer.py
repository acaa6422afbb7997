"""`facecli index` files into and out of a server's gallery: `serve --import-index FILE` enrols an index's faces
(subjects the gallery holds already are skipped, so the import can stay on every start), `serve --export-index
FILE` writes the gallery as an index that `facecli identify` and `eval-identify` search."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from facecli.errors import FaceCliError
from facecli.fileio import check_writable
from facecli.identification.gallery import Gallery
from facecli.identification.model_identity import identities


def import_index(gallery, path: str | os.PathLike[str], checkpoint: Path, flip: bool) -> tuple[int, int]:  # noqa: ANN001
    """Enrol the faces of a facecli index file built with this model; (faces added, subjects skipped)."""
    index = Gallery.open(path)
    if index.model_hash not in identities(checkpoint):
        raise FaceCliError(
            f"{path} was built with model {index.model_hash}, the server's is {gallery.model_hash}; "
            "rebuild the index with this model"
        )
    if index.flip != flip:
        raise FaceCliError(f"{path} was built {'with' if index.flip else 'without'} --flip; serve it the same way")
    known = {subject.name for subject in gallery.subjects()}
    names = np.array(index.identities)
    added, skipped = 0, 0
    for name in dict.fromkeys(index.identities):
        if name in known:
            skipped += 1
            continue
        vectors = index.embeddings[names == name]
        gallery.add_faces(name, vectors, [None] * len(vectors), [None] * len(vectors))
        added += len(vectors)
    return added, skipped


def export_index(gallery, out: str | os.PathLike[str], checkpoint: Path, flip: bool, force: bool) -> int:  # noqa: ANN001
    """Write the gallery's faces as a facecli index file (flat, per image); the faces written."""
    check_writable(out, force=force)
    if not hasattr(gallery, "embeddings"):
        raise FaceCliError("--export-index: export a Milvus gallery with Milvus's own tools")
    vectors, ids, subjects = gallery.embeddings()
    if not len(ids):
        raise FaceCliError("--export-index: the gallery holds no faces")
    paths = [f"face:{face_id}" for face_id in ids]
    Gallery(vectors, subjects, paths, str(checkpoint.resolve()), gallery.model_hash, flip=flip).save(out)
    return len(ids)
