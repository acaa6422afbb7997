"""Read verification pairs files: LFW pairs.txt, `path1 path2 label` lines, and CSV with a header."""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from facecli.errors import FaceCliError
from facecli.fileio import read_text

PairsFormat = Literal["auto", "lfw", "paths", "csv"]
IMAGE_COLUMNS = (
    ("imageA", "imageB"),
    ("img_1", "img_2"),
    ("img1", "img2"),
    ("image1", "image2"),
    ("path1", "path2"),
    ("image_a", "image_b"),
    ("left", "right"),
)
LABEL_COLUMNS = ("label", "is_same", "issame", "same", "genuine")
ID_COLUMNS = (
    ("id_1", "id_2"),
    ("id1", "id2"),
    ("idA", "idB"),
    ("identity1", "identity2"),
    ("identity_a", "identity_b"),
)


@dataclass
class Pairs:
    """Pairs of image paths (relative to a root), with 0/1 labels and folds when the file has them."""

    source: Path
    format: str
    left: list[str]
    right: list[str]
    labels: np.ndarray | None
    folds: np.ndarray | None
    table: pd.DataFrame

    def __len__(self) -> int:
        return len(self.left)

    @property
    def images(self) -> list[str]:
        """Each distinct image once, in first-seen order."""
        return list(dict.fromkeys(self.left + self.right))


def _ints(fields: list[str]) -> list[int] | None:
    try:
        return [int(f) for f in fields]
    except ValueError:
        return None


def detect_format(path: Path, text: str) -> str:
    """lfw when the first line is one or two integers, csv when it is a comma-separated header, else paths."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    if _ints(first.split()) is not None and len(first.split()) in (1, 2):
        return "lfw"
    if "," in first:
        return "csv"
    return "paths"


def _lfw_image(name: str, number: str, path: Path, lineno: int) -> str:
    if not number.isdigit():
        raise FaceCliError(f"{path} line {lineno}: image number '{number}' is not a positive integer")
    return f"{name}/{name}_{int(number):04d}.jpg"


def _parse_lfw(path: Path, text: str) -> Pairs:
    lines = [(n, line.split()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    header_no, header = lines[0]
    counts = _ints(header)
    if counts is None or len(counts) not in (1, 2) or min(counts) < 1:
        raise FaceCliError(f"{path} line {header_no}: expected a header '<folds> <pairs>' or '<pairs>'")
    n_folds, per_half = (1, counts[0]) if len(counts) == 1 else counts
    body = lines[1:]
    expected = n_folds * 2 * per_half
    if len(body) != expected:
        raise FaceCliError(f"{path}: header promises {n_folds} x 2 x {per_half} = {expected} pairs, found {len(body)}")
    left, right, labels = [], [], []
    for index, (lineno, fields) in enumerate(body):
        genuine_expected = index % (2 * per_half) < per_half
        if len(fields) == 3:
            name, a, b = fields
            left.append(_lfw_image(name, a, path, lineno))
            right.append(_lfw_image(name, b, path, lineno))
            labels.append(1)
        elif len(fields) == 4:
            left.append(_lfw_image(fields[0], fields[1], path, lineno))
            right.append(_lfw_image(fields[2], fields[3], path, lineno))
            labels.append(0)
        else:
            raise FaceCliError(
                f"{path} line {lineno}: expected 3 fields (name n1 n2) or 4 (name1 n1 name2 n2), got {len(fields)}"
            )
        if labels[-1] != int(genuine_expected):
            kind = "genuine (3 fields)" if genuine_expected else "impostor (4 fields)"
            raise FaceCliError(f"{path} line {lineno}: expected a {kind} pair at this position of the fold")
    folds = np.arange(expected) // (2 * per_half) if n_folds > 1 else None
    table = pd.DataFrame({"image1": left, "image2": right, "label": labels})
    return Pairs(path, "lfw", left, right, np.array(labels), folds, table)


def _label(value: str, path: Path, lineno: int) -> int:
    if value.strip() not in ("0", "1"):
        raise FaceCliError(f"{path} line {lineno}: label must be 0 or 1, got '{value}'")
    return int(value)


def _parse_paths(path: Path, text: str) -> Pairs:
    rows = [(n, line.split()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    width = len(rows[0][1])
    if width not in (2, 3):
        raise FaceCliError(
            f"{path} line {rows[0][0]}: expected 'path1 path2 label' (or 'path1 path2'), got {width} fields"
        )
    left, right, labels = [], [], []
    for lineno, fields in rows:
        if len(fields) != width:
            raise FaceCliError(
                f"{path} line {lineno}: expected {width} fields like line {rows[0][0]}, got {len(fields)}"
            )
        left.append(fields[0])
        right.append(fields[1])
        if width == 3:
            labels.append(_label(fields[2], path, lineno))
    table = pd.DataFrame({"image1": left, "image2": right, **({"label": labels} if labels else {})})
    return Pairs(path, "paths", left, right, np.array(labels) if labels else None, None, table)


def _pick(columns: list[str], options: tuple) -> tuple | str | None:
    lower = {c.lower(): c for c in columns}
    for option in options:
        names = option if isinstance(option, tuple) else (option,)
        if all(n.lower() in lower for n in names):
            found = tuple(lower[n.lower()] for n in names)
            return found if isinstance(option, tuple) else found[0]
    return None


def integer_column(table: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    """A CSV column as integers; the first value that is not one is a one-line error naming file and line."""
    values = pd.to_numeric(table[column].astype(str).str.strip(), errors="coerce").to_numpy(float)
    bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
    if len(bad):
        raise FaceCliError(f"{path} line {bad[0] + 2}: {column} '{table[column].iloc[bad[0]]}' is not an integer")
    return values.astype(np.int64)


def _parse_csv(path: Path, text: str, columns: list[str] | None) -> Pairs:
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, quoting=csv.QUOTE_MINIMAL)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise FaceCliError(f"{path}: not a readable CSV ({' '.join(str(exc).split())})") from None
    table.columns = [c.strip() for c in table.columns]
    names = list(table.columns)
    label_col, id_cols = None, None
    if columns:
        if len(columns) not in (2, 3) or any(c not in names for c in columns):
            raise FaceCliError(f"{path}: --columns {','.join(columns)} not all among the header's {', '.join(names)}")
        image_cols = (columns[0], columns[1])
        label_col = columns[2] if len(columns) == 3 else None
    else:
        image_cols = _pick(names, IMAGE_COLUMNS)  # type: ignore[assignment]
        if image_cols is None:
            raise FaceCliError(
                f"{path} line 1: no image columns found in header ({', '.join(names)}); "
                "name them with --columns a,b[,label]"
            )
        label_col = _pick(names, LABEL_COLUMNS)  # type: ignore[assignment]
        id_cols = None if label_col else _pick(names, ID_COLUMNS)
    labels = None
    if label_col is not None:
        labels = np.array([_label(v, path, i + 2) for i, v in enumerate(table[label_col])])
    elif id_cols is not None:
        labels = (table[id_cols[0]].str.strip() == table[id_cols[1]].str.strip()).to_numpy().astype(int)
    folds = integer_column(table, "fold", path) if "fold" in names else None
    for col in image_cols:
        empty = np.flatnonzero(table[col].str.strip() == "")
        if len(empty):
            raise FaceCliError(f"{path} line {empty[0] + 2}: empty image path in column '{col}'")
    left = table[image_cols[0]].str.strip().tolist()
    right = table[image_cols[1]].str.strip().tolist()
    return Pairs(path, "csv", left, right, labels, folds, table)


def read_pairs(path: str | os.PathLike[str], fmt: PairsFormat = "auto", columns: list[str] | None = None) -> Pairs:
    """Parse a pairs file; a malformed line raises FaceCliError naming the file and line."""
    path = Path(path)
    if path.is_dir():
        raise FaceCliError(f"{path}: a folder, not a pairs file (image folders go to --root)")
    if not path.is_file():
        raise FaceCliError(f"{path}: no such pairs file")
    text = read_text(path)
    if not text.strip():
        raise FaceCliError(f"{path}: empty pairs file")
    fmt = detect_format(path, text) if fmt == "auto" else fmt
    parsers = {"lfw": _parse_lfw, "csv": lambda p, t: _parse_csv(p, t, columns), "paths": _parse_paths}
    if fmt not in parsers:
        raise FaceCliError(f"unknown pairs format '{fmt}' (choose from: auto, lfw, paths, csv)")
    pairs = parsers[fmt](path, text)
    if not len(pairs):
        raise FaceCliError(f"{path}: no pairs in this file (only a header or counts)")
    return pairs


def resolve_images(pairs: Pairs, root: str | os.PathLike[str], allow_outside_root: bool = False) -> dict[str, Path]:
    """Map each image of the pairs to a file under `root`; paths escaping root are refused."""
    root = Path(root).resolve()
    resolved = {}
    for image in pairs.images:
        if "\x00" in image:
            raise FaceCliError(f"{pairs.source}: image name {image!r} holds a NUL byte")
        full = (root / image).resolve()
        if not allow_outside_root and not full.is_relative_to(root):
            raise FaceCliError(f"{pairs.source}: image '{image}' is outside --root {root} (use --allow-outside-root)")
        resolved[image] = full
    return resolved


def missing_images(resolved: dict[str, Path]) -> list[str]:
    """Images of the pairs with no file."""
    return [image for image, full in resolved.items() if not full.is_file()]
