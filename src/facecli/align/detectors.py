"""Face detectors behind one call: image (uint8 RGB) -> boxes (N, 5: x1, y1, x2, y2, score) and
landmarks (N, 5, 2: left eye, right eye, nose, left and right mouth corner, in image pixels).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from facecli.errors import FaceCliError, unknown_choice

DETECTORS = ("mtcnn", "haar", "onnx")
# where the haar fallback puts the landmarks it cannot see, as fractions of the face box
HAAR_LANDMARKS = np.array([[0.30, 0.38], [0.70, 0.38], [0.50, 0.58], [0.35, 0.78], [0.65, 0.78]], np.float32)


class Detector(Protocol):
    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


class HaarDetector:
    """OpenCV's bundled Viola-Jones cascades: faces, then eyes inside each face; a light fallback.

    Nose and mouth are placed from the box geometry (the cascades do not find them).
    """

    def __init__(self, min_face: int = 20) -> None:
        if not hasattr(cv2, "CascadeClassifier"):
            raise FaceCliError("this OpenCV has no CascadeClassifier (OpenCV 5 dropped it); use --detector mtcnn")
        root = Path(cv2.data.haarcascades)
        self.faces = cv2.CascadeClassifier(str(root / "haarcascade_frontalface_default.xml"))
        self.eyes = cv2.CascadeClassifier(str(root / "haarcascade_eye.xml"))
        self.min_face = min_face

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        grey = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        faces = self.faces.detectMultiScale(grey, 1.1, 5, minSize=(self.min_face, self.min_face))
        boxes, landmarks = [], []
        for x, y, w, h in faces if len(faces) else []:
            points = HAAR_LANDMARKS * (w, h) + (x, y)
            upper = grey[y : y + h // 2, x : x + w]
            eyes = self.eyes.detectMultiScale(upper, 1.1, 3, minSize=(max(4, w // 10), max(4, w // 10)))
            if len(eyes) >= 2:
                two = sorted(eyes, key=lambda e: -e[2] * e[3])[:2]
                centres = sorted(((ex + ew / 2 + x, ey + eh / 2 + y) for ex, ey, ew, eh in two))
                points[:2] = centres
            boxes.append([x, y, x + w, y + h, 1.0])
            landmarks.append(points)
        return np.array(boxes, np.float32).reshape(-1, 5), np.array(landmarks, np.float32).reshape(-1, 5, 2)


class OnnxDetector:
    """A user's own detector exported to ONNX.

    Contract: one input, float32 (1, 3, H, W) RGB 0-255; two outputs, boxes (N, 5: x1, y1, x2, y2,
    score) and landmarks (N, 10: x1..x5 then y1..y5, in the order of `facecli align`'s landmarks),
    in input pixels. Wrap any model's own decoding (anchors, NMS) in the exported graph.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import onnxruntime as ort

        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise FaceCliError(f"{path}: not a loadable ONNX detector ({type(exc).__name__})") from None
        if len(self.session.get_outputs()) != 2:
            raise FaceCliError(f"{path}: an ONNX detector needs 2 outputs (boxes, landmarks)")
        self.input = self.session.get_inputs()[0].name

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.ascontiguousarray(image.transpose(2, 0, 1)[None], np.float32)
        boxes, points = self.session.run(None, {self.input: x})
        points = np.asarray(points, np.float32).reshape(-1, 2, 5).transpose(0, 2, 1)
        return np.asarray(boxes, np.float32).reshape(-1, 5), points


def open_detector(name: str, min_face: int = 20, model: str | os.PathLike[str] | None = None) -> Detector:
    """The detector asked for by name (`onnx` needs `model`)."""
    if name == "mtcnn":
        from facecli.align.mtcnn import MTCNN

        return MTCNN.pretrained(min_face=min_face)
    if name == "haar":
        return HaarDetector(min_face)
    if name == "onnx":
        if model is None:
            raise FaceCliError("--detector onnx needs --detector-model FILE.onnx")
        return OnnxDetector(model)
    raise unknown_choice("detector", name, DETECTORS)
