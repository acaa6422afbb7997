"""IJB-style template verification (`facecli eval --templates --template-pairs`).

A template is a set of images of one person, grouped into media (the frames of one video, or one photo).
The files are IJB-B/IJB-C's own: `*_face_tid_mid.txt` (`image template_id media_id` per line) and
`*_template_pair_label.txt` (`template1 template2 label`). As the IJB evaluation scripts pool them: each
image's embedding is L2-normalised, averaged within its media, the media are summed within the template,
and the template is normalised; a pair's score is the cosine of its two templates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from facecli.errors import FaceCliError

PAIR_CHUNK = 1_000_000  # template pairs scored at a time (bounded memory for IJB-C's 15.6M pairs)


@dataclass
class Templates:
    """Each image with its template and media ids."""

    source: Path
    images: list[Path]
    templates: np.ndarray
    media: np.ndarray


def _table(path: Path, columns: int, what: str) -> pd.DataFrame:
    """A whitespace-separated file of exactly `columns` text columns; a `what` that does not parse is one line."""
    try:
        table = pd.read_csv(path, sep=r"\s+", header=None, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise FaceCliError(f"{path}: no such file") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise FaceCliError(f"{path}: not a {what} ({type(exc).__name__})") from None
    if table.shape[1] != columns:
        raise FaceCliError(f"{path}: expected {columns} columns per line ({what}), found {table.shape[1]}")
    return table


def _integers(table: pd.DataFrame, column: int, path: Path, what: str) -> np.ndarray:
    values = pd.to_numeric(table[column], errors="coerce")
    bad = np.flatnonzero(values.isna().to_numpy() | (values % 1 != 0).to_numpy())
    if len(bad):
        raise FaceCliError(f"{path} line {bad[0] + 1}: {what} {table[column][bad[0]]!r} is not a whole number")
    return values.to_numpy(np.int64)


def read_templates(path: str | Path, root: str | Path | None = None) -> Templates:
    """`image template_id media_id` lines; images relative to `root` (default: the file's folder)."""
    path = Path(path)
    table = _table(path, 3, "template file: image template_id media_id")
    root = Path(root) if root is not None else path.parent
    images = [Path(name) if Path(name).is_absolute() else root / name for name in table[0]]
    for lineno, image in enumerate(images, 1):
        if not image.is_file():
            raise FaceCliError(f"{path} line {lineno}: {image}: no such image")
    templates = _integers(table, 1, path, "template id")
    media = _integers(table, 2, path, "media id")
    return Templates(path, images, templates, media)


def read_template_pairs(path: str | Path, templates: Templates) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`template1 template2 label` lines: (first, second, label) arrays; unknown templates are refused."""
    path = Path(path)
    table = _table(path, 3, "template pairs file: template1 template2 label")
    first, second = _integers(table, 0, path, "template id"), _integers(table, 1, path, "template id")
    labels = _integers(table, 2, path, "label")
    known = np.unique(templates.templates)
    for column in (first, second):
        unknown = np.flatnonzero(~np.isin(column, known))
        if len(unknown):
            row = unknown[0]
            raise FaceCliError(f"{path} line {row + 1}: template {column[row]} is not in {templates.source}")
    bad = np.flatnonzero((labels != 0) & (labels != 1))
    if len(bad):
        raise FaceCliError(f"{path} line {bad[0] + 1}: label {labels[bad[0]]} is not 0 or 1")
    return first, second, labels


def pool(features: np.ndarray, templates: Templates) -> tuple[np.ndarray, np.ndarray]:
    """(template ids, sorted; their normalised features): images averaged within media, media summed."""
    features = features / np.linalg.norm(features, axis=1, keepdims=True).clip(1e-12)
    pairs = np.stack([templates.templates, templates.media], 1)
    media_keys, media_of_image = np.unique(pairs, axis=0, return_inverse=True)
    media_of_image = media_of_image.reshape(-1)
    media = np.zeros((len(media_keys), features.shape[1]), np.float64)
    np.add.at(media, media_of_image, features)
    media /= np.bincount(media_of_image, minlength=len(media_keys))[:, None]
    ids, template_of_media = np.unique(media_keys[:, 0], return_inverse=True)
    pooled = np.zeros((len(ids), features.shape[1]), np.float64)
    np.add.at(pooled, template_of_media.reshape(-1), media)
    return ids, pooled / np.linalg.norm(pooled, axis=1, keepdims=True).clip(1e-12)


def score_pairs(ids: np.ndarray, pooled: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Cosine of each pair's two template features, a chunk of pairs at a time."""
    a, b = np.searchsorted(ids, first), np.searchsorted(ids, second)
    scores = np.empty(len(first), np.float64)
    for start in range(0, len(first), PAIR_CHUNK):
        part = slice(start, start + PAIR_CHUNK)
        scores[part] = np.einsum("ij,ij->i", pooled[a[part]], pooled[b[part]])
    return scores
