"""`facecli synth`: identity-structured, procedurally drawn face-like images for tests and the demo.

Identity lives in geometry (face shape, eye, brow, nose and mouth layout, hair style). Colour is
deliberately unreliable: every image gets its own background, colour cast and lighting, so the
mean colour of an image says little about who it shows.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facecli.errors import FaceCliError
from facecli.fileio import atomic_path
from facecli.numbers import Bound, check_number

RENDER_SCALE = 2  # draw at twice the size, then shrink, for anti-aliased edges


@dataclass(frozen=True)
class Traits:
    """The fixed look of one synthetic identity (coordinates are fractions of the image side)."""

    face_w: float
    face_h: float
    skin: tuple[float, float, float]
    eye_y: float
    eye_dx: float
    eye_r: float
    eye_ratio: float
    iris: tuple[float, float, float]
    brow_gap: float
    brow_tilt: float
    brow_len: float
    brow_thick: float
    nose_len: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    mouth_curve: float
    hair_style: int
    hair: tuple[float, float, float]
    hairline: float
    mole: tuple[float, float] | None


def identity_traits(rng: np.random.Generator) -> Traits:
    """Draw one identity's traits."""
    return Traits(
        face_w=rng.uniform(0.25, 0.34),
        face_h=rng.uniform(0.33, 0.43),
        skin=tuple(rng.uniform([140, 90, 60], [240, 200, 170])),
        eye_y=rng.uniform(0.40, 0.48),
        eye_dx=rng.uniform(0.10, 0.18),
        eye_r=rng.uniform(0.03, 0.055),
        eye_ratio=rng.uniform(0.35, 0.8),
        iris=tuple(rng.uniform(0, 160, 3)),
        brow_gap=rng.uniform(0.04, 0.09),
        brow_tilt=rng.uniform(-25, 25),
        brow_len=rng.uniform(0.04, 0.08),
        brow_thick=rng.uniform(0.008, 0.025),
        nose_len=rng.uniform(0.07, 0.16),
        nose_w=rng.uniform(0.025, 0.06),
        mouth_y=rng.uniform(0.65, 0.75),
        mouth_w=rng.uniform(0.06, 0.15),
        mouth_curve=rng.uniform(-0.04, 0.05),
        hair_style=int(rng.integers(0, 4)),
        hair=tuple(rng.uniform(0, 120, 3)),
        hairline=rng.uniform(0.0, 0.08),
        mole=(rng.uniform(-0.2, 0.2), rng.uniform(0.45, 0.7)) if rng.random() < 0.5 else None,
    )


def _pt(x: float, y: float, side: int) -> tuple[int, int]:
    return int(round(x * side)), int(round(y * side))


def _draw_face(t: Traits, side: int, rng: np.random.Generator) -> np.ndarray:
    """Draw an upright face on a random background; returns a float32 RGB canvas."""
    bg_top, bg_bottom = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    ramp = np.linspace(0, 1, side, dtype=np.float32)[:, None, None]
    canvas = np.ascontiguousarray(((1 - ramp) * bg_top + ramp * bg_bottom) * np.ones((1, side, 1), np.float32))
    yaw = rng.uniform(-0.03, 0.03)  # features shift sideways as the head turns
    cx, cy = 0.5, 0.52
    skin = np.clip(np.array(t.skin) + rng.normal(0, 12, 3), 0, 255)
    hair = np.clip(np.array(t.hair) + rng.normal(0, 10, 3), 0, 255)
    axes = (int(t.face_w * side), int(t.face_h * side))
    if t.hair_style == 2:  # long hair behind the face
        cv2.ellipse(
            canvas,
            _pt(cx, cy - 0.02, side),
            (axes[0] + side // 14, axes[1] + side // 20),
            0,
            180,
            360,
            hair.tolist(),
            -1,
        )
        cv2.rectangle(
            canvas,
            _pt(cx - t.face_w - 0.07, cy - 0.05, side),
            _pt(cx + t.face_w + 0.07, cy + 0.3, side),
            hair.tolist(),
            -1,
        )
    cv2.ellipse(canvas, _pt(cx, cy, side), axes, 0, 0, 360, skin.tolist(), -1)
    top = cy - t.face_h
    if t.hair_style in (1, 2):  # cap of hair
        cv2.ellipse(canvas, _pt(cx, cy, side), (axes[0] + 2, axes[1] + 2), 0, 180, 360, hair.tolist(), -1)
        cv2.ellipse(canvas, _pt(cx, cy + t.hairline + 0.06, side), axes, 0, 180, 360, skin.tolist(), -1)
    elif t.hair_style == 3:  # fringe
        cv2.ellipse(
            canvas,
            _pt(cx, top + 0.08 + t.hairline, side),
            (axes[0], int((0.1 + t.hairline) * side)),
            0,
            180,
            360,
            hair.tolist(),
            -1,
        )
    blink = rng.uniform(0.6, 1.1)
    for sign in (-1, 1):
        ex, ey = cx + sign * t.eye_dx + yaw, t.eye_y
        eye_axes = (int(t.eye_r * side), max(1, int(t.eye_r * t.eye_ratio * blink * side)))
        cv2.ellipse(canvas, _pt(ex, ey, side), eye_axes, 0, 0, 360, (245, 245, 245), -1)
        cv2.circle(
            canvas,
            _pt(ex + rng.uniform(-0.006, 0.006), ey, side),
            max(1, int(t.eye_r * 0.5 * side)),
            np.array(t.iris).tolist(),
            -1,
        )
        cv2.circle(canvas, _pt(ex, ey, side), max(1, int(t.eye_r * 0.22 * side)), (10, 10, 10), -1)
        angle = math.radians(t.brow_tilt * sign)
        bx, by = ex, ey - t.brow_gap - t.eye_r * t.eye_ratio
        dx, dy = math.cos(angle) * t.brow_len, math.sin(angle) * t.brow_len
        cv2.line(
            canvas,
            _pt(bx - dx, by + dy, side),
            _pt(bx + dx, by - dy, side),
            (hair * 0.7).tolist(),
            max(1, int(t.brow_thick * side)),
        )
    nose_top, nose_tip = t.eye_y + 0.02, t.eye_y + 0.02 + t.nose_len
    nose = np.array(
        [
            _pt(cx + yaw * 1.5, nose_top, side),
            _pt(cx - t.nose_w + yaw * 1.5, nose_tip, side),
            _pt(cx + t.nose_w + yaw * 1.5, nose_tip, side),
        ]
    )
    cv2.fillConvexPoly(canvas, nose, (skin * 0.75).tolist())
    smile = t.mouth_curve + rng.uniform(-0.012, 0.012)
    xs = np.linspace(-t.mouth_w, t.mouth_w, 12)
    ys = t.mouth_y + smile * (xs / t.mouth_w) ** 2 - smile
    mouth = np.array([_pt(cx + yaw + x, y, side) for x, y in zip(xs, ys, strict=True)], np.int32)
    cv2.polylines(canvas, [mouth], False, (120, 30, 40), max(1, side // 40))
    if t.mole is not None:
        cv2.circle(
            canvas, _pt(cx + t.mole[0] * t.face_w * 2 + yaw, t.mole[1], side), max(1, side // 60), (50, 30, 20), -1
        )
    return canvas


def render_image(t: Traits, size: int, rng: np.random.Generator) -> np.ndarray:
    """One image of an identity: pose, scale, lighting, colour cast, blur, noise, occlusion."""
    side = size * RENDER_SCALE
    canvas = _draw_face(t, side, rng)
    centre = (side / 2 + rng.normal(0, 0.03) * side, side / 2 + rng.normal(0, 0.03) * side)
    warp = cv2.getRotationMatrix2D(centre, rng.uniform(-12, 12), rng.uniform(0.88, 1.12))
    canvas = cv2.warpAffine(canvas, warp, (side, side), borderMode=cv2.BORDER_REFLECT)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
    angle = rng.uniform(0, 2 * math.pi)
    light = 1 + rng.uniform(0, 0.45) * ((xx - 0.5) * math.cos(angle) + (yy - 0.5) * math.sin(angle))
    canvas = canvas * light[..., None] * rng.uniform(0.7, 1.3, 3) + rng.uniform(-30, 30)
    if rng.random() < 0.15:
        w, h = rng.uniform(0.15, 0.35, 2) * side
        x, y = rng.uniform(0, side - w), rng.uniform(0, side - h)
        cv2.rectangle(canvas, (int(x), int(y)), (int(x + w), int(y + h)), rng.uniform(0, 255, 3).tolist(), -1)
    image = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    sigma = rng.uniform(0, 0.8)
    if sigma > 0.3:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    image = image + rng.normal(0, rng.uniform(0, 6), image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _write_identity(out: Path, index: int, images: int, size: int, seed: int) -> int:
    rng = np.random.default_rng([seed, index])
    traits = identity_traits(rng)
    name = f"person_{index:04d}"
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(1, images + 1):
        rgb = render_image(traits, size, rng)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
        with atomic_path(folder / f"{name}_{k:04d}.jpg") as tmp:
            tmp.write_bytes(buf.tobytes())
    return images


MAX_SIZE = 1024  # px: a 1024 px face is ~12 MB while drawn, a thread at a time


def synth(
    out_dir: str | os.PathLike[str],
    *,
    identities: int = 20,
    images: int = 10,
    size: int = 64,
    seed: int = 0,
    threads: int = 4,
    force: bool = False,
) -> int:
    """Write `identities` folders of `images` JPEGs each (LFW naming: name/name_0001.jpg); returns the count."""
    out = Path(out_dir)
    check_number("--identities", identities, Bound(1, 1_000_000, integer=True))
    check_number("--images", images, Bound(1, 10_000, integer=True))
    check_number("--size", size, Bound(16, MAX_SIZE, integer=True))  # --size 100000 asked for 894 GiB
    if out.exists() and any(out.iterdir()) and not force:
        raise FaceCliError(f"{out} is not empty; pass --force to write into it")
    with ThreadPoolExecutor(max(1, threads)) as pool:
        counts = pool.map(lambda i: _write_identity(out, i, images, size, seed), range(identities))
        return sum(counts)
