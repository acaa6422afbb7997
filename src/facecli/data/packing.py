"""`facecli pack` and `unpack`: a folder or training list to an insightface .rec (with its .idx), a pairs
file to an insightface .bin validation set, and a .rec back to a folder of identity folders."""

from __future__ import annotations

import os
from pathlib import Path

from facecli.data.bin_sets import write_bin
from facecli.data.images import ImageError, probe
from facecli.data.pairs import read_pairs, resolve_images
from facecli.data.recordio import open_record_set, write_record_set
from facecli.data.training_set import read_training_set
from facecli.errors import FaceCliError
from facecli.fileio import atomic_path, check_writable


def pack_images(
    source: str | os.PathLike[str], out: str | os.PathLike[str], *, root: Path | None = None, force: bool = False
) -> int:
    """A dataset folder or training list as `out` (.rec) and its .idx; returns the images packed."""
    out = Path(out)
    if out.suffix != ".rec":
        raise FaceCliError(f"{out}: pack images into a .rec (its .idx is written beside it)")
    check_writable(out, out.with_suffix(".idx"), force=force, inputs=(source,))
    data = read_training_set(source, root)
    if data.records is not None:
        raise FaceCliError(f"{source}: already a .rec; copy it as it is, or unpack it first")
    return write_record_set(out, [(int(label), path) for label, path in zip(data.labels, data.paths, strict=True)])


def pack_pairs(pairs: str | os.PathLike[str], root: str | os.PathLike[str], out: str | os.PathLike[str], *,
               force: bool = False) -> int:  # fmt: skip
    """A labelled pairs file as an insightface .bin (images in pair order); returns the pairs packed."""
    out = Path(out)
    if out.suffix != ".bin":
        raise FaceCliError(f"{out}: pack pairs into a .bin")
    check_writable(out, force=force, inputs=(pairs,))
    parsed = read_pairs(pairs)
    if parsed.labels is None:
        raise FaceCliError(f"{pairs}: a .bin needs labelled pairs")
    files = resolve_images(parsed, root)
    missing = [name for name, path in files.items() if not path.is_file()]
    if missing:
        raise FaceCliError(f"{pairs}: {len(missing)} image(s) not found under {root}, first: {missing[0]}")
    images = []
    for left, right in zip(parsed.left, parsed.right, strict=True):
        images += [files[left].read_bytes(), files[right].read_bytes()]
    write_bin(out, images, [bool(label) for label in parsed.labels])
    return len(parsed.labels)


def unpack(rec: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, force: bool = False) -> int:
    """A .rec's images as `out_dir/<label>/<key>.<jpg|png>`; returns how many were written."""
    found, out_dir = open_record_set(rec), Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise FaceCliError(f"{out_dir} is not empty; pass --force to write into it")
    for key, offset, label in zip(found.keys, found.offsets, found.labels, strict=True):
        image = found.rec.image_record(offset, key).image
        try:
            probe(image)
        except ImageError as exc:
            raise FaceCliError(f"{rec} record {key}: {exc}") from None
        suffix = ".png" if image[:4] == b"\x89PNG" else ".jpg"
        target = out_dir / str(label) / f"{key}{suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            tmp.write_bytes(image)
    return len(found.keys)
