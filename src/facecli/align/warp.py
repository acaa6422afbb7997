"""From five landmarks to an aligned crop: ArcFace's five-point template or FaceNet's levelled box."""

from __future__ import annotations

import math

import cv2
import numpy as np

from facecli.errors import unknown_choice

TEMPLATES = ("facenet", "arcface")
# insightface's reference positions of the five landmarks in a 112 x 112 crop
ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]], np.float32
)


def eye_angle(landmarks: np.ndarray) -> float:
    """Angle of the line from the left to the right eye, in degrees (0 = level, y grows downwards)."""
    (lx, ly), (rx, ry) = landmarks[0], landmarks[1]
    return math.degrees(math.atan2(ry - ly, rx - lx))


def alignment_matrix(box: np.ndarray, landmarks: np.ndarray, size: int, template: str, margin: float) -> np.ndarray:
    """The 2x3 similarity transform from the photo to the size x size crop."""
    if template == "arcface":
        target = ARCFACE_112 * (size / 112.0)
        matrix, _ = cv2.estimateAffinePartial2D(landmarks.astype(np.float32), target, method=cv2.LMEDS)
        if matrix is not None:
            return matrix
        template = "facenet"  # degenerate landmarks (all on a line): fall back to the levelled box
    if template != "facenet":
        raise unknown_choice("template", template, TEMPLATES)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = max(box[2] - box[0], box[3] - box[1]) * (1 + margin)
    matrix = cv2.getRotationMatrix2D((float(cx), float(cy)), eye_angle(landmarks), size / side)
    matrix[:, 2] += (size / 2 - cx, size / 2 - cy)
    return matrix


def align_face(
    image: np.ndarray, box: np.ndarray, landmarks: np.ndarray, size: int, template: str = "facenet", margin: float = 0.2
) -> np.ndarray:
    """The face warped to the template and cut to size x size (borders replicated)."""
    matrix = alignment_matrix(box, landmarks, size, template, margin)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The largest centred square, resized to size x size (for --keep-unaligned)."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top : top + side, left : left + side]
    return cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
