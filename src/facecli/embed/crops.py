"""Raw photos for the commands that embed files (eval, predict, sweep, index, identify, eval-identify,
embed): each photo detected and aligned once, its crop kept in the cache, keyed by the photo's path,
size and mtime, the detector, the template and the crop size. Photos without a face are named, never
dropped silently."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2

from facecli.data.images import shown_size
from facecli.embed.auto_backend import cache_root
from facecli.embed.faces import FaceCrops, NoFaceFound
from facecli.errors import FaceCliError
from facecli.fileio import atomic_path


def _key(path: Path, crops: FaceCrops) -> str:
    from facecli.align.mtcnn import VERSION as MTCNN_VERSION  # torch vision ops: only when photos are aligned

    stat = path.stat()
    detector = f"mtcnn{MTCNN_VERSION}|{crops.template}|{crops.config.input_size}"
    text = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{detector}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _size(path: Path) -> tuple[int, int] | None:
    """(height, width) from the header; None when unreadable (the crop step then names the problem)."""
    try:
        width, height = shown_size(path)
    except OSError:
        return None
    return height, width


def aligned_files(files: list[Path], crops: FaceCrops) -> list[Path]:
    """For each photo, its aligned crop file (the largest face), made once; the photo itself where `crops`
    needs no detection for it."""
    folder = cache_root() / "crops"
    out, faceless = [], []
    for path in files:
        if not crops.needs_detection(_size(path)):
            out.append(path)  # already a crop of the model's input size
            continue
        target = folder / f"{_key(path, crops)}.png"
        if not target.is_file():
            try:
                faces = crops(path)
            except NoFaceFound:
                faceless.append(path)
                continue
            ok, data = cv2.imencode(".png", cv2.cvtColor(faces[0], cv2.COLOR_RGB2BGR))
            if not ok:
                raise FaceCliError(f"{target}: cannot encode the crop of {path}")
            with atomic_path(target) as tmp:
                tmp.write_bytes(data.tobytes())
        out.append(target)
    if faceless:
        shown = ", ".join(str(p) for p in faceless[:3]) + (
            f" and {len(faceless) - 3} more" if len(faceless) > 3 else ""
        )
        raise FaceCliError(
            f"no face found (MTCNN, faces of 20+ px) in {len(faceless)} photo(s): {shown}; "
            "if they are already face crops, use --align never"
        )
    return out
