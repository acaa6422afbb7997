"""Alignment speed: photos per second on the CPU for each detector (detection + landmarks + warp).

Photos: the astronaut (512x512, scikit-image) and, when ../shared/reference is present, a portrait
(1125x1612) and a group photo of six (1200x630). Usage: python benchmarks/align.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from facecli.align.detectors import open_detector
from facecli.align.warp import align_face
from facecli.data.images import read_image

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "faces"


def photos() -> dict[str, np.ndarray]:
    from skimage import data

    found = {"astronaut 512x512": data.astronaut()}
    for name in ("photo_kate_siegel.jpg", "multiface.jpg"):
        if (REFERENCE / name).is_file():
            image = read_image(REFERENCE / name)
            found[f"{name} {image.shape[1]}x{image.shape[0]}"] = image
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    table = Table(title=f"facecli align, CPU, {torch.get_num_threads()} torch threads, one photo at a time")
    for column in ("detector", "photo", "faces", "ms / photo", "photos / s"):
        table.add_column(column, justify="left" if column in ("detector", "photo") else "right")
    for detector_name in ("mtcnn", "haar"):
        detector = open_detector(detector_name)
        for label, image in photos().items():
            detector(image)  # warm-up
            start = time.perf_counter()
            for _ in range(args.repeats):
                boxes, landmarks = detector(image)
                for box, points in zip(boxes, landmarks, strict=True):
                    align_face(image, box, points, 160)
            seconds = (time.perf_counter() - start) / args.repeats
            table.add_row(detector_name, label, str(len(boxes)), f"{seconds * 1000:.0f}", f"{1 / seconds:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
