"""Scan an image-folder dataset (one folder per identity): usable images, problems, duplicates."""

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


def scan_dataset(root: str | os.PathLike[str], check: bool = False, workers: int = 4) -> DatasetScan:
    """Read every file once (hash + header check, or a full decode with `check`), in parallel."""
    root = Path(root)
    if not root.is_dir():
        raise FaceCliError(f"{root}: not a directory (expected one folder per identity)")
    scan = DatasetScan(root=root)
    candidates: list[tuple[str, Path]] = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if not entry.is_dir():
            scan.skipped.append((entry, "not inside an identity folder"))
            continue
        if not _utf8_name(entry):
            scan.skipped.append((entry, "folder name is not valid UTF-8"))
            continue
        scan.images[entry.name] = []
        for file in sorted(entry.iterdir(), key=lambda p: p.name):
            if not file.is_file():
                scan.skipped.append((file, "not a file"))
            elif not is_image_file(file):
                scan.skipped.append((file, "not an image extension"))
            elif not _utf8_name(file):
                scan.bad_images.append((file, "file name is not valid UTF-8"))
            else:
                candidates.append((entry.name, file))
    if not scan.images:
        raise FaceCliError(f"{root}: no identity folders found (expected {root}/<identity>/<image>.jpg)")
    with ThreadPoolExecutor(max(1, workers)) as pool:
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
