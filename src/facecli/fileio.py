"""Atomic, durable output files with the user's permissions, and the no-overwrite-without-force rule."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from facecli.errors import FaceCliError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".pgm")  # the images facecli reads, in any case


def check_writable(
    *paths: str | os.PathLike[str] | None, force: bool = False, inputs: tuple[str | os.PathLike[str] | None, ...] = ()
) -> None:
    """Refuse, before any work starts, to overwrite existing outputs unless `force`; outputs that cannot be
    written at all (a folder where the file goes, a file where a folder on the way goes, a folder the user may
    not write in); an output that is one of the command's `inputs`, even with `force`; and one file named for
    two outputs."""
    outputs = [Path(p) for p in paths if p is not None]
    for path in outputs:
        _check_creatable(path)
        check_not_input(path, *inputs)
    _check_distinct(outputs)
    existing = [str(p) for p in outputs if p.exists()]
    if existing and not force:
        verb = "exists" if len(existing) == 1 else "exist"
        raise FaceCliError(f"{', '.join(existing)} already {verb}; pass --force to overwrite")


# what matplotlib writes with its default backend (Agg) and no extra packages
PLOT_FORMATS = ("png", "pdf", "svg", "svgz", "jpg", "jpeg", "eps", "ps", "tif", "tiff", "webp")


def check_plot_file(path: str | os.PathLike[str] | None) -> None:
    """Refuse, before any work, a figure path whose extension names no format a figure is written in."""
    if path is not None and Path(path).suffix.lower().lstrip(".") not in PLOT_FORMATS:
        raise FaceCliError(f"{path}: a figure is written as {', '.join(PLOT_FORMATS)}; name the file so")


def _check_creatable(path: Path) -> None:
    if path.is_dir():
        raise FaceCliError(f"{path} is a folder; name a file to write")
    above = path.parent
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir():
        raise FaceCliError(f"{path}: {above} is a file, not a folder; choose another path")
    if not os.access(above, os.W_OK | os.X_OK):
        raise FaceCliError(f"{path}: {above} is not writable; check its permissions or choose another path")


def check_not_input(out: str | os.PathLike[str], *inputs: str | os.PathLike[str] | None) -> None:
    """Refuse an output that is one of the command's inputs (by its real path), or an image inside an input
    folder, even with --force: writing it would replace what the command reads, often the only copy (a model's
    trained weights, a photo)."""
    real = os.path.realpath(out)
    for given in inputs:
        if given is None:
            continue
        source = os.path.realpath(given)
        inside = os.path.isdir(source) and real.startswith(source + os.sep) and real.lower().endswith(IMAGE_EXTENSIONS)
        if real == source or (inside and os.path.exists(real)):
            also = "" if str(given) == str(out) else f" ({given})"
            raise FaceCliError(f"{out} is also an input{also}; write the output elsewhere")


def same_files(real_paths: set[str], paths: list[str]) -> set[str]:
    """Those of `real_paths` (real paths already) that one of `paths` names, through a link or `..`, or holds
    under the same file name with the same bytes (a copied folder). Only the paths whose file name matches are
    looked at, so a training set of millions of images costs no more than a look at each name; at most
    CONTENT_CHECKS files of the same name and size are read to compare their bytes."""
    by_name_size: dict[tuple[str, int], list[str]] = {}
    for real in real_paths:
        with contextlib.suppress(OSError):
            by_name_size.setdefault((os.path.basename(real), os.path.getsize(real)), []).append(real)
    names = {name for name, _ in by_name_size}
    digests: dict[str, bytes | None] = {}
    found: set[str] = set()
    for path in paths:
        if os.path.basename(path) not in names:
            continue
        real = os.path.realpath(path)
        if real in real_paths:
            found.add(real)
            continue
        with contextlib.suppress(OSError):
            alike = by_name_size.get((os.path.basename(real), os.path.getsize(real)), [])
            mine = _digest(real, digests) if alike and len(digests) < CONTENT_CHECKS else None
            if mine is not None:
                found.update(r for r in alike if _digest(r, digests) == mine)
    return found


CONTENT_CHECKS = 20_000  # files read to compare bytes, at most: a few seconds of start-up


def _digest(path: str, seen: dict[str, bytes | None]) -> bytes | None:
    """The file's BLAKE2 digest (None where it cannot be read), each file read once."""
    if path not in seen:
        try:
            seen[path] = hashlib.blake2b(Path(path).read_bytes()).digest()  # images: a few MB at most
        except OSError:
            seen[path] = None
    return seen[path]


def _check_distinct(outputs: list[Path]) -> None:
    seen: dict[str, Path] = {}
    for path in outputs:
        real = os.path.realpath(path)
        if real in seen:
            same = f"{path} is" if str(path) == str(seen[real]) else f"{seen[real]} and {path} are one file,"
            raise FaceCliError(f"{same} named for two outputs; give each output its own file")
        seen[real] = path


def _umask() -> int:
    """The process's umask, read without changing it (Linux), else by setting and restoring it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path` (beside the file it links to, for a symlink); on success it replaces
    that file in one rename.

    The file gets the permissions any new file of the user gets (0666 less the umask), and it is on disk
    before the rename, and the rename before returning (fsync of the file, then of its folder), so that
    neither a crash nor a power cut leaves an empty or half-written output.
    """
    target = Path(os.path.realpath(path))  # through a symlink to the real file: the link stays a link
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            yield tmp
        except Exception as exc:
            if not _failed_write(exc, tmp):
                raise
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
            raise FaceCliError(f"{target}: cannot write it ({reason}); nothing was replaced") from None
        # mkstemp makes 0600, unreadable to the people the output is for; some writers replace the file
        os.chmod(tmp, 0o666 & ~_umask())
        _fsync(tmp)
        os.replace(tmp, target)
        _fsync(target.parent, directory=True)
    finally:
        tmp.unlink(missing_ok=True)


# how the writers facecli uses report a failed write without an errno (safetensors, torch.save, numpy)
WRITE_FAILURES = re.compile(
    r"I/O error|No space left|File too large|[Qq]uota|os error \d+|unexpected pos \d+ vs|requested and \d+ written"
)  # the last: numpy's short write (np.save on a full disk)


def _failed_write(exc: Exception, tmp: Path) -> bool:
    """A full disk, a quota or an I/O error, however the writer reports it; not the writer's own errors, nor
    an input that could not be read on the way (an OSError naming another file)."""
    if isinstance(exc, FaceCliError):
        return False
    if isinstance(exc, OSError) and exc.filename is not None and os.path.realpath(exc.filename) != str(tmp):
        return False
    return (isinstance(exc, OSError) and exc.errno is not None) or bool(WRITE_FAILURES.search(str(exc)))


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 text to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_csv_atomic(path: str | os.PathLike[str], table: Any) -> None:
    """Write a pandas DataFrame to `path` as CSV (no index), atomically."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def read_text(path: Path) -> str:
    """A UTF-8 text file (BOM allowed); unreadable or non-UTF-8 files are a one-line error naming the file."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise FaceCliError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise FaceCliError(f"{path}: not UTF-8 text (byte {exc.start})") from None
