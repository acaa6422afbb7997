"""Reading images safely: header checks before decoding, every format and depth to uint8 RGB, turned as
viewers show them (EXIF orientation), data after a JPEG's end (a Motion Photo's video) ignored."""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from facecli.errors import FaceCliError
from facecli.fileio import IMAGE_EXTENSIONS

MAX_PIXELS = 89_478_485  # Pillow's own decompression-bomb limit
warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # probe() refuses such images itself
EXIF_ORIENTATION = 0x0112
# EXIF orientation -> what turns the stored pixels (rows, columns) into the picture as it is meant to be seen
ORIENTED: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],  # mirrored
    3: lambda a: a[::-1, ::-1],  # upside down
    4: lambda a: a[::-1],  # mirrored upside down
    5: lambda a: a.swapaxes(0, 1),  # transposed
    6: lambda a: np.rot90(a, -1),  # stored turned left: turn right (a phone held upright)
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),  # transversed
    8: lambda a: np.rot90(a, 1),  # stored turned right: turn left
}
TURNED = (5, 6, 7, 8)  # orientations that swap width and height


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
    """(width, height) as shown, from the header alone; raises ImageError for empty, unknown or huge images."""
    width, height, orientation = _header(data)
    return (height, width) if orientation in TURNED else (width, height)


def shown_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(width, height) of an image file as shown, reading its header only; OSError when unreadable."""
    with Image.open(path) as im:
        return (im.height, im.width) if _orientation(im) in TURNED else im.size


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation, 1 where there is none, it is not one of the eight, or the EXIF block is damaged
    (viewers ignore such a block too)."""
    if im.format not in ("JPEG", "PNG", "WEBP"):
        return 1
    try:
        value = im.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - any damage to the EXIF block leaves the pixels as stored
        return 1
    return value if isinstance(value, int) and value in ORIENTED else 1


def _header(data: bytes) -> tuple[int, int, int]:
    """Stored width, height and EXIF orientation (1 where there is none or it is not one of the eight)."""
    if not data:
        raise ImageError("empty file")
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            orientation = _orientation(im)
    except Image.DecompressionBombError:
        raise ImageError(f"exceeds the {MAX_PIXELS} pixel limit (decompression bomb?)") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ImageError(f"not a readable image ({type(exc).__name__})") from None
    if width * height > MAX_PIXELS:
        raise ImageError(f"{width}x{height} pixels exceeds the {MAX_PIXELS} pixel limit (decompression bomb?)")
    if width < 2 or height < 2:
        raise ImageError(f"{width}x{height} pixels is too small to hold a face")
    return width, height, orientation


def jpeg_complete(data: bytes) -> bool:
    """Whether a JPEG's image data reaches its end-of-image marker. The header's segments are skipped by their
    lengths (an EXIF thumbnail holds a marker of its own); in the image data a 0xFF byte is always escaped,
    so the first FF D9 there is the end. What follows it, a Motion Photo's video say, is not the image's."""
    at = 2
    while at + 4 <= len(data) and data[at] == 0xFF and data[at + 1] != 0xDA:  # up to the start of scan
        at += 1 if data[at + 1] == 0xFF else 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return data.find(b"\xff\xd9", at) != -1


def decode(data: bytes) -> np.ndarray:
    """Decode bytes to an HxWx3 uint8 RGB array (16-bit, grey, alpha and CMYK converted), turned upright by its
    EXIF orientation as photo viewers show it."""
    orientation = _header(data)[2]
    if data[:2] == b"\xff\xd8" and not jpeg_complete(data):
        # libjpeg decodes a truncated JPEG to a grey-filled image without failing
        raise ImageError("truncated JPEG (no end-of-image marker)")
    image = _decoded(data)
    return np.ascontiguousarray(ORIENTED[orientation](image)) if orientation != 1 else image


def _decoded(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)  # pixels as stored
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


GREY_TOLERANCE = 2  # levels: a grey face saved as colour JPEG keeps its channels within 1-2 levels of each other


def looks_grey(image: np.ndarray) -> bool:
    """Whether an HxWx3 image carries no colour: its three channels equal, within GREY_TOLERANCE."""
    channels = image.astype(np.int16)
    return bool(np.abs(channels[..., 0] - channels[..., 1]).max() <= GREY_TOLERANCE) and bool(
        np.abs(channels[..., 1] - channels[..., 2]).max() <= GREY_TOLERANCE
    )
