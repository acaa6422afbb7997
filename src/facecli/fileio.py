"""Atomic output files and the no-overwrite-without-force rule."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from facecli.errors import FaceCliError


def check_writable(*paths: str | os.PathLike[str] | None, force: bool = False) -> None:
    """Refuse, before any work starts, to overwrite existing outputs unless `force`."""
    existing = [str(p) for p in paths if p is not None and Path(p).exists()]
    if existing and not force:
        verb = "exists" if len(existing) == 1 else "exist"
        raise FaceCliError(f"{', '.join(existing)} already {verb}; pass --force to overwrite")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 text to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_text(path: Path) -> str:
    """A UTF-8 text file (BOM allowed); unreadable or non-UTF-8 files are a one-line error naming the file."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise FaceCliError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise FaceCliError(f"{path}: not UTF-8 text (byte {exc.start})") from None
