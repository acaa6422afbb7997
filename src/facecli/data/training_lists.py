"""Training lists, one reader for every kind users have: the FaceNet ports' `cls_train.txt` (`id;path`),
CSV (`path,label[,identity]` as `facecli annotate --csv` writes it, or any columns with `--columns`), and
CelebA's `identity_CelebA.txt` (`000001.jpg 2880`). Errors name the file and line."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from facecli.errors import FaceCliError
from facecli.fileio import read_text


@dataclass
class ListedImages:
    """Images (relative paths resolved against `root`) with their identity as written in the list."""

    paths: list[Path]
    identities: list[str]


def _kind(path: Path, text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    if path.suffix.lower() == ".csv":
        return "csv"
    if ";" in first:
        return "cls_train"
    if len(first.split()) == 2:
        return "celeba"
    raise FaceCliError(
        f"{path} line 1: not a training list facecli reads ('<class_id>;<path>', a CSV with path,label columns, "
        f"or CelebA's '<image> <identity>'), got {first.strip()[:80]!r}"
    )


def _cls_train(path: Path, text: str) -> list[tuple[int, str, str]]:
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.strip().split(";", 1)  # the id is a number: every ';' after the first is the path's
        if len(fields) != 2 or not fields[1]:
            raise FaceCliError(f"{path} line {lineno}: expected '<class_id>;<path>', got {line.strip()!r}")
        try:
            int(fields[0])
        except ValueError:
            raise FaceCliError(f"{path} line {lineno}: class id {fields[0]!r} is not an integer") from None
        rows.append((lineno, fields[1], fields[0]))
    return rows


def _celeba(path: Path, text: str) -> list[tuple[int, str, str]]:
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit():
            raise FaceCliError(f"{path} line {lineno}: expected '<image> <identity number>', got {line.strip()!r}")
        rows.append((lineno, fields[0], fields[1]))
    return rows


def _csv(path: Path, text: str, columns: list[str] | None) -> list[tuple[int, str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    path_column, label_column = columns[:2] if columns else ("path", "label")
    identity_column = columns[2] if columns and len(columns) > 2 else ("identity" if "identity" in header else None)
    missing = [c for c in (path_column, label_column) if c not in header]
    if missing:
        raise FaceCliError(
            f"{path} line 1: no column {', '.join(missing)} (columns: {', '.join(header)}); name them with --columns"
        )
    rows = []
    for lineno, row in enumerate(reader, 2):
        image, label = (row.get(path_column) or "").strip(), (row.get(label_column) or "").strip()
        if not image or not label:
            raise FaceCliError(f"{path} line {lineno}: empty {path_column if not image else label_column}")
        name = (row.get(identity_column) or "").strip() if identity_column else ""
        rows.append((lineno, image, name or label))
    return rows


def read_training_list(path: Path, root: Path | None = None, columns: list[str] | None = None) -> ListedImages:
    """The images and identities of a training list; relative paths are under `root` (default: the list's folder)."""
    text = read_text(path)
    kind = _kind(path, text)
    if columns and kind != "csv":
        raise FaceCliError(f"--columns applies to CSV lists; {path} is a {kind} list")
    rows = (
        _csv(path, text, columns)
        if kind == "csv"
        else _cls_train(path, text)
        if kind == "cls_train"
        else _celeba(path, text)
    )
    if not rows:
        raise FaceCliError(f"{path}: no training images listed")
    base = root if root is not None else path.parent
    paths = [Path(p) if Path(p).is_absolute() else base / p for _, p, _ in rows]
    missing = [(lineno, p) for (lineno, _, _), p in zip(rows, paths, strict=True) if not p.is_file()]
    if missing:
        lineno, first = missing[0]
        hint = " (pass --root with the image folder)" if kind == "celeba" and root is None else ""
        raise FaceCliError(
            f"{path} line {lineno}: {first}: no such image; {len(missing)} listed image(s) missing{hint}"
        )
    return ListedImages(paths, [name for _, _, name in rows])
