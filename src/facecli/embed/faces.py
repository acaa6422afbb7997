"""A photo as the model sees it: detected and aligned with the template and size the model expects, or used
as it is when it already is a crop of the model's input size."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from facecli.align.detectors import open_detector
from facecli.align.warp import TEMPLATES, align_face
from facecli.data.images import ImageError, read_image
from facecli.errors import FaceCliError, unknown_choice
from facecli.models import ModelConfig

AlignMode = Literal["auto", "always", "never"]
ALIGN_MODES = get_args(AlignMode)


class NoFaceFound(FaceCliError):
    """The detector found no face in a photo that had to be aligned."""


def default_template(config: ModelConfig) -> str:
    """ArcFace's template for 112 px models (the ArcFace convention), FaceNet's otherwise."""
    return "arcface" if config.input_size == (112, 112) else "facenet"


@dataclass
class Face:
    """One face of a photo: its crop as the model sees it, and where it was found (None for a crop used as is)."""

    crop: np.ndarray
    box: list[float] | None = None  # x1, y1, x2, y2 in the photo's pixels
    score: float | None = None  # the detector's confidence
    landmarks: list[list[float]] | None = None  # eyes, nose, mouth corners: (x, y) in the photo's pixels


class FaceCrops:
    """Crops of the faces in a photo, largest first, ready for the model's preprocessing."""

    def __init__(self, config: ModelConfig, align: str = "auto", template: str | None = None) -> None:
        if align not in ALIGN_MODES:
            raise unknown_choice("--align", align, ALIGN_MODES)
        template = template or default_template(config)
        if template not in TEMPLATES:
            raise unknown_choice("template", template, TEMPLATES)
        self.config, self.align, self.template = config, align, template
        self._detector = None

    def needs_detection(self, size: tuple[int, int] | None) -> bool:
        """`auto` aligns unless the image already has the model's input size, (height, width)."""
        return self.align == "always" or (self.align == "auto" and size != self.config.input_size)

    def __call__(self, path: Path) -> list[np.ndarray]:
        """Every face in the photo, largest first (the image itself when no detection is needed)."""
        try:
            image = read_image(path)
        except ImageError as exc:
            raise FaceCliError(f"{path}: {exc}") from None
        return [face.crop for face in self.found(image, str(path))]

    def found(
        self, image: np.ndarray, name: str, hint: str = "; if it is already a face crop, use --align never"
    ) -> list[Face]:
        """Every face of a decoded photo, largest first, with where it was found; NoFaceFound names `name`."""
        if not self.needs_detection(image.shape[:2]):
            return [Face(image)]
        if self._detector is None:
            self._detector = open_detector("mtcnn")
        boxes, landmarks = self._detector(image)
        if not len(boxes):
            raise NoFaceFound(f"{name}: no face found (MTCNN, faces of 20+ px){hint}")
        order = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
        side = self.config.input_size[0]
        return [
            Face(
                align_face(image, boxes[k], landmarks[k], side, self.template),
                [round(float(v), 1) for v in boxes[k, :4]],
                round(float(boxes[k, 4]), 4),
                [[round(float(x), 1), round(float(y), 1)] for x, y in landmarks[k]],
            )
            for k in order
        ]
