"""Images are read as photo viewers show them: EXIF orientation applied (in every command, through one
reader, and in the header size the crop step checks), data after a JPEG's end ignored, truncation refused."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from facecli.data.images import ImageError, decode, jpeg_complete, probe, shown_size


def _photo() -> Image.Image:
    """A 40 x 24 picture no turn or mirror leaves unchanged: four coloured quadrants of unequal size."""
    pixels = np.zeros((24, 40, 3), np.uint8)
    pixels[:8, :30] = (250, 10, 10)
    pixels[8:, :30] = (10, 250, 10)
    pixels[:8, 30:] = (10, 10, 250)
    pixels[8:, 30:] = (240, 240, 20)
    return Image.fromarray(pixels)


def _encoded(image: Image.Image, fmt: str, orientation: int | None) -> bytes:
    out = io.BytesIO()
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    image.save(out, fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {}))
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_turned_as_pillow_shows_it(fmt, orientation, tmp_path):
    data = _encoded(_photo(), fmt, orientation)
    shown = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    decoded = decode(data)
    assert decoded.shape == shown.shape
    assert np.abs(decoded.astype(int) - shown).mean() < (0.01 if fmt == "PNG" else 3)
    assert probe(data) == (shown.shape[1], shown.shape[0])
    (tmp_path / "photo").write_bytes(data)
    assert shown_size(tmp_path / "photo") == (shown.shape[1], shown.shape[0])


def test_a_phone_photo_stored_sideways_is_read_upright():
    upright = _photo()
    sideways = upright.transpose(Image.Transpose.ROTATE_90)  # the sensor's rows: the picture turned left
    decoded = decode(_encoded(sideways, "PNG", 6))  # Orientation=6: turn right to show
    assert np.array_equal(decoded, np.asarray(upright))


@pytest.mark.parametrize("orientation", [0, 9, 65535])
def test_an_orientation_outside_the_eight_leaves_the_pixels_as_stored(orientation):
    data = _encoded(_photo(), "PNG", orientation)
    assert np.array_equal(decode(data), np.asarray(_photo()))


def test_a_jpeg_with_a_video_after_its_end_reads_like_the_jpeg_alone():
    jpeg = _encoded(_photo(), "JPEG", None)
    motion_photo = jpeg + b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40  # an MP4 appended
    assert jpeg_complete(motion_photo)
    assert np.array_equal(decode(motion_photo), decode(jpeg))


def test_a_truncated_jpeg_is_refused_even_when_its_exif_thumbnail_ends_in_an_end_marker():
    thumbnail = _encoded(_photo().resize((8, 8)), "JPEG", None)
    exif = Image.Exif()
    exif[0x0112] = 1
    out = io.BytesIO()
    _photo().resize((200, 120)).save(out, "JPEG", exif=exif.tobytes() + thumbnail)  # an FF D9 in the header
    whole = out.getvalue()
    assert jpeg_complete(whole)
    with pytest.raises(ImageError, match="truncated JPEG"):
        decode(whole[: len(whole) * 2 // 3])
