"""Reading images safely: header checks before decoding, every format and depth to uint8 RGB."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from facecli.errors import FaceCliError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".pgm")
MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb limit
warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # probe() refuses such images itself


class ImageError(Exception):
    """An image that cannot be used; the message is the reason."""


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """True for the supported extensions, in any case."""
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def image_files(path: str | os.PathLike[str]) -> list[Path]:
    """One image, or every image under a folder (sorted); a one-line error when there is none."""
    path = Path(path)
    if path.is_file():
        if not is_image_file(path):
            raise FaceCliError(f"{path}: not an image (expected jpg, jpeg, png, bmp, webp or pgm)")
        return [path]
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.is_file() and is_image_file(p))
        if not found:
            raise FaceCliError(f"{path}: no images in this folder")
        return found
    raise FaceCliError(f"{path}: no such image or folder")


def probe(data: bytes) -> tuple[int, int]:
    """(width, height) from the header alone; raises ImageError for empty, unknown or huge images."""
    if not data:
        raise ImageError("empty file")
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
    except Image.DecompressionBombError:
        raise ImageError(f"exceeds the {MAX_PIXELS} pixel limit (decompression bomb?)") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageError(f"not a readable image ({type(exc).__name__})") from None
    if width * height > MAX_PIXELS:
        raise ImageError(f"{width}x{height} pixels exceeds the {MAX_PIXELS} pixel limit (decompression bomb?)")
    if width < 2 or height < 2:
        raise ImageError(f"{width}x{height} pixels is too small to hold a face")
    return width, height


def decode(data: bytes) -> np.ndarray:
    """Decode bytes to an HxWx3 uint8 RGB array (16-bit, grey, alpha and CMYK converted)."""
    probe(data)
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-1024:]:
        # libjpeg decodes a truncated JPEG to a grey-filled image without failing
        raise ImageError("truncated JPEG (no end-of-image marker)")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageError("corrupt or truncated image data")
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read and decode one image file to uint8 RGB; raises ImageError naming the problem."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read ({exc.strerror})") from None
    return decode(data)
