"""Each identity's dominant centre in embedding space: from a trained margin head's class centres (the dominant
sub-centre of Sub-center ArcFace), or, for any model, from the identity's own embeddings."""

from __future__ import annotations

import numpy as np

from facecli.errors import FaceCliError


def unit(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (float64)."""
    rows = np.asarray(rows, np.float64)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def embedding_centres(embeddings: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """(classes x E) centres from the embeddings alone: each identity's medoid (the embedding most similar to
    the rest), then the mean of the half of its embeddings nearest that medoid. Wrong labels up to nearly
    half an identity's images do not move it."""
    x = unit(embeddings)
    centres = np.zeros((classes, x.shape[1]))
    for label in range(classes):
        own = x[labels == label]
        if not len(own):
            continue
        similarity = own @ own.T
        medoid = own[int(similarity.sum(1).argmax())]
        nearest = np.argsort(-(own @ medoid))[: max(1, (len(own) + 1) // 2)]
        centres[label] = own[nearest].mean(0)
    return unit(centres)


def head_centres(weight: np.ndarray, embeddings: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """(classes x E) dominant centres from a head's (classes * K x E) centres, row c * K + k sub-centre k of
    class c: for each class the sub-centre most of its images are nearest to (the Sub-center ArcFace paper's
    dominant sub-centre; with K = 1, ArcFace's class centre itself)."""
    if len(weight) % classes:
        raise FaceCliError(f"the head holds {len(weight)} centres, no whole number per each of {classes} identities")
    k = len(weight) // classes
    centres = unit(weight).reshape(classes, k, -1)
    x = unit(embeddings)
    dominant = np.zeros(classes, np.int64)
    for label in range(classes):
        own = x[labels == label]
        if len(own):
            dominant[label] = np.bincount((own @ centres[label].T).argmax(1), minlength=k).argmax()
    return centres[np.arange(classes), dominant]
