"""Scan an image-folder dataset (one folder per identity): usable images, problems, duplicates.

Identity folders sit at depth 1 (`root/<identity>/<image>`), or deeper, as Omniglot's
`alphabet/character/<image>`: the identity is then the leaf folder that holds the images, named by its
path from the root. A mix of depths is reported, not guessed.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from facecli.data.images import ImageError, decode, is_image_file, probe
from facecli.errors import FaceCliError


@dataclass
class DatasetScan:
    """What is in a dataset folder, identities in sorted order."""

    root: Path
    images: dict[str, list[Path]] = field(default_factory=dict)
    bad_images: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    duplicates: list[list[Path]] = field(default_factory=list)

    @property
    def identities(self) -> list[str]:
        return list(self.images)

    @property
    def empty_identities(self) -> list[str]:
        return [name for name, files in self.images.items() if not files]

    @property
    def image_count(self) -> int:
        return sum(len(files) for files in self.images.values())


def _inspect(path: Path, check: bool) -> tuple[str | None, str | None]:
    """(content hash, None) for a usable image, (None, reason) otherwise."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"cannot read ({exc.strerror})"
    try:
        decode(data) if check else probe(data)
    except ImageError as exc:
        return None, str(exc)
    return hashlib.blake2b(data, digest_size=16).hexdigest(), None


def _utf8_name(path: Path) -> bool:
    try:
        os.fsencode(path).decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _identity_folders(root: Path, scan: DatasetScan) -> list[Path]:
    """The folders that hold a dataset's images (and empty leaf folders), all at one depth."""
    found: list[Path] = []
    walked = {_identity(root)}
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if not entry.is_dir():
            scan.skipped.append((entry, "not inside an identity folder"))
        elif not _utf8_name(entry):
            scan.skipped.append((entry, "folder name is not valid UTF-8"))
        elif _walked_before(entry, walked, scan):
            continue
        else:
            found += _leaves(entry, scan, walked)
    depths = defaultdict(list)
    for folder in found:
        depths[len(folder.relative_to(root).parts)].append(folder)
    if len(depths) > 1:
        shown = "; ".join(
            f"depth {d}: {len(f)} folder(s), e.g. {f[0].relative_to(root)}" for d, f in sorted(depths.items())
        )
        raise FaceCliError(
            f"{root}: identity folders at different depths ({shown}); put every identity's images at one depth"
        )
    return found


def _identity(folder: Path) -> tuple[int, int]:
    status = folder.stat()
    return status.st_dev, status.st_ino


def _walked_before(folder: Path, walked: set[tuple[int, int]], scan: DatasetScan) -> bool:
    """Whether `folder` (through a symlink, say) is one already walked: skipped, so a link loop ends."""
    key = _identity(folder)
    if key in walked:
        scan.skipped.append((folder, f"leads to {folder.resolve()}, walked already (a symbolic link loop?)"))
        return True
    walked.add(key)
    return False


def _leaves(folder: Path, scan: DatasetScan, walked: set[tuple[int, int]]) -> list[Path]:
    """`folder` if it holds images (its sub-folders then skipped) or nothing else, else the leaves below it;
    a folder walked already (`walked`, by device and inode) is skipped, so symbolic link loops end."""
    children = sorted(folder.iterdir(), key=lambda p: p.name)
    subfolders = [c for c in children if c.is_dir()]
    if not subfolders:
        return [folder]
    if any(c.is_file() and is_image_file(c) for c in children):
        scan.skipped += [(sub, "a folder inside an identity folder") for sub in subfolders]
        return [folder]
    leaves = []
    for sub in subfolders:
        if not _utf8_name(sub):
            scan.skipped.append((sub, "folder name is not valid UTF-8"))
        elif not _walked_before(sub, walked, scan):
            leaves += _leaves(sub, scan, walked)
    return leaves


def scan_dataset(root: str | os.PathLike[str], check: bool = False, threads: int = 4) -> DatasetScan:
    """Read every file once (hash + header check, or a full decode with `check`), in parallel."""
    root = Path(root)
    if not root.is_dir():
        raise FaceCliError(f"{root}: not a directory (expected one folder per identity)")
    scan = DatasetScan(root=root)
    candidates: list[tuple[str, Path]] = []
    for folder in _identity_folders(root, scan):
        name = folder.relative_to(root).as_posix()
        scan.images[name] = []
        for file in sorted(folder.iterdir(), key=lambda p: p.name):
            if file.is_dir():
                continue  # skipped in _leaves
            if not file.is_file():
                scan.skipped.append((file, "not a file"))
            elif not is_image_file(file):
                scan.skipped.append((file, "not an image extension"))
            elif not _utf8_name(file):
                scan.bad_images.append((file, "file name is not valid UTF-8"))
            else:
                candidates.append((name, file))
    if not scan.images:
        raise FaceCliError(f"{root}: no identity folders found (expected {root}/<identity>/<image>.jpg)")
    with ThreadPoolExecutor(max(1, threads)) as pool:
        results = list(pool.map(lambda c: _inspect(c[1], check), candidates))
    by_hash: dict[str, list[Path]] = defaultdict(list)
    for (identity, file), (digest, reason) in zip(candidates, results, strict=True):
        if reason is not None:
            scan.bad_images.append((file, reason))
            continue
        scan.images[identity].append(file)
        by_hash[digest].append(file)  # type: ignore[index]
    scan.duplicates = [files for files in by_hash.values() if len(files) > 1]
    return scan
