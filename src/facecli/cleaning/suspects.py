"""Which training images look mislabelled, and which identities look like one person under two names, given
every image's embedding and every identity's dominant centre."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facecli.cleaning.centres import unit

# The rules, from benchmarks/clean.py (RESULTS.md, "facecli clean"): an image is a suspect when it lies more
# than MIN_MARGIN nearer another identity's centre than its own, or further than MAX_ANGLE from its own; two
# identities are one person when their centres are nearer each other than SAME_PERSON_SHARE of their images
# are to them.
MAX_ANGLE = 75.0  # degrees; the Sub-center ArcFace paper drops images beyond this from their dominant centre
MIN_MARGIN = 15.0  # degrees
SAME_PERSON_SHARE = 0.5
BLOCK = 1024


@dataclass(frozen=True)
class Suspects:
    """Images far from their identity's centre, and pairs of identities whose centres nearly coincide."""

    angles: np.ndarray  # each image's angle to its own identity's centre, degrees
    nearest_other: np.ndarray  # each image's nearest other identity (label)
    other_angles: np.ndarray  # and its angle to that identity's centre
    suspect: np.ndarray  # bool per image
    same_person: list[tuple[int, int, float]]  # (label, label, angle between their centres), nearest first

    def worst_first(self) -> np.ndarray:
        """Indices of the suspects, the most telling first: furthest past their nearest other centre."""
        suspects = np.flatnonzero(self.suspect)
        return suspects[np.argsort(-(self.angles - self.other_angles)[suspects], kind="stable")]


def find_suspects(
    embeddings: np.ndarray,
    labels: np.ndarray,
    centres: np.ndarray,
    max_angle: float = MAX_ANGLE,
    min_margin: float = MIN_MARGIN,
) -> Suspects:
    """Each image's angles to its own centre and the nearest other; the suspects (more than `min_margin`
    degrees nearer another centre, or past `max_angle` from their own); the same-person pairs."""
    x, c = unit(embeddings), unit(centres)
    cosine = np.clip(x @ c.T, -1, 1)
    rows = np.arange(len(x))
    own = cosine[rows, labels]
    cosine[rows, labels] = -np.inf
    other = cosine.argmax(1)
    angles = np.degrees(np.arccos(own))
    other_angles = np.degrees(np.arccos(cosine[rows, other]))
    suspect = (angles - other_angles > min_margin) | (angles > max_angle)
    return Suspects(angles, other, other_angles, suspect, same_person(c, labels, angles))


def same_person(centres: np.ndarray, labels: np.ndarray, angles: np.ndarray) -> list[tuple[int, int, float]]:
    """Pairs of identities whose centres are nearer each other than half of either's images are to its own
    centre: by the model, one person under two names. Blocks of rows keep memory small at 100k identities."""
    classes = len(centres)
    spread = np.full(classes, np.nan)
    for label in range(classes):
        own = angles[labels == label]
        if len(own):
            spread[label] = np.quantile(own, SAME_PERSON_SHARE)
    pairs = []
    for start in range(0, classes, BLOCK):
        block = np.degrees(np.arccos(np.clip(centres[start : start + BLOCK] @ centres.T, -1, 1)))
        limit = np.fmax(spread[start : start + BLOCK, None], spread[None, :])  # NaN: an identity with no image
        for a, b in zip(*np.nonzero(block < limit), strict=True):
            if start + a < b:
                pairs.append((int(start + a), int(b), float(block[a, b])))
    return sorted(pairs, key=lambda p: p[2])
