"""`facecli align`: a folder of photos to a folder of aligned face crops with the same layout."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from facecli.align.detectors import open_detector
from facecli.align.warp import TEMPLATES, align_face, centre_crop
from facecli.data.images import ImageError, is_image_file, read_image
from facecli.errors import FaceCliError, unknown_choice
from facecli.fileio import atomic_path, write_csv_atomic
from facecli.numbers import Bound, check_number

REPORT = "align_report.csv"
CROP_SIZE = Bound(16, 4096, integer=True)  # px: the input sizes a facecli model takes
CROP_MARGIN = Bound(0, 2)  # the border on each side, a fraction of the face box
MIN_FACE = Bound(12, integer=True)  # px: MTCNN's smallest window


@dataclass
class AlignOptions:
    """How to detect and crop."""

    size: int = 160
    margin: float = 0.2
    template: str = "facenet"
    detector: str = "mtcnn"
    detector_model: Path | None = None
    min_face: int = 20
    all_faces: bool = False
    keep_unaligned: bool = False
    threads: int = 2
    force: bool = False


@dataclass
class AlignReport:
    """One row per input photo: what happened to it."""

    out_dir: Path
    rows: list[dict] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(row["status"] == status for row in self.rows)


def _write(path: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(path.suffix or ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise FaceCliError(f"{path}: OpenCV cannot encode this file type")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.tobytes())


def _crop_name(name: str) -> str:
    """The crop's name: the photo's, but PNG for a PGM photo (a PGM holds grey only; the crop is colour)."""
    return name[: -len(".pgm")] + ".png" if name.lower().endswith(".pgm") else name


def _outputs(target: Path, faces: int) -> list[Path]:
    """The largest face keeps the photo's name; with --all the others get _face1, _face2, ..."""
    return [target] + [target.with_name(f"{target.stem}_face{k}{target.suffix}") for k in range(1, faces)]


class Aligner:
    """Aligns one photo at a time; safe to call from several threads (one detector per thread)."""

    def __init__(self, options: AlignOptions) -> None:
        if options.template not in TEMPLATES:
            raise unknown_choice("template", options.template, TEMPLATES)
        check_number("--size", options.size, CROP_SIZE)  # --size 100000 asked OpenCV for 30 GB a crop
        check_number("--crop-margin", options.margin, CROP_MARGIN)
        check_number("--min-face", options.min_face, MIN_FACE)
        if options.detector_model is not None and options.detector != "onnx":
            raise FaceCliError(f"--detector-model is for --detector onnx; the detector is {options.detector}")
        self.options = options
        self.local = threading.local()
        open_detector(options.detector, options.min_face, options.detector_model)  # fail before any work

    def detector(self):  # noqa: ANN201
        if not hasattr(self.local, "detector"):
            o = self.options
            self.local.detector = open_detector(o.detector, o.min_face, o.detector_model)
        return self.local.detector

    def __call__(self, source: Path, target: Path, name: str) -> dict:
        o = self.options
        row = {"path": name, "status": "", "faces": 0, "score": np.nan, "reason": ""}
        if target.exists() and not o.force:
            return row | {"status": "exists", "reason": "output exists (use --force to redo)"}
        try:
            image = read_image(source)
        except ImageError as exc:
            return row | {"status": "unreadable", "reason": str(exc)}
        boxes, landmarks = self.detector()(image)
        row["faces"] = len(boxes)
        if not len(boxes):
            reason = f"no face found ({o.detector}, faces of {o.min_face}+ px)"
            if o.keep_unaligned:
                _write(target, centre_crop(image, o.size))
                return row | {"status": "unaligned", "reason": reason + "; wrote a centre crop"}
            return row | {"status": "no face", "reason": reason}
        order = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
        chosen = order if o.all_faces else order[:1]
        for path, k in zip(_outputs(target, len(chosen)), chosen, strict=True):
            _write(path, align_face(image, boxes[k], landmarks[k], o.size, o.template, o.margin))
        return row | {"status": "aligned", "score": float(boxes[chosen[0], 4])}


def align_folder(
    in_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    options: AlignOptions,
    track: Callable[[list[Future], int], Iterable[Future]] = lambda jobs, total: jobs,
) -> AlignReport:
    """Detect, align and crop every photo under `in_dir` into `out_dir` (same relative paths); `track`
    wraps the photos' jobs to show progress (the CLI's bar).

    Photos whose output exists are skipped unless `force`, so a stopped run continues where it was;
    every photo, aligned or not, gets a row in OUT_DIR/align_report.csv.
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not in_dir.is_dir():
        raise FaceCliError(f"{in_dir}: not a directory of photos")
    if out_dir.resolve() == in_dir.resolve():
        raise FaceCliError(f"{out_dir}: the output folder must differ from the input folder")
    inside = out_dir.resolve()
    photos = sorted(
        p for p in in_dir.rglob("*") if p.is_file() and is_image_file(p) and not p.resolve().is_relative_to(inside)
    )  # an output folder inside the input: its crops are not photos to align again on the next run
    if not photos:
        raise FaceCliError(f"{in_dir}: no images found (looked for .jpg, .jpeg, .png, .bmp, .webp, .pgm)")
    aligner = Aligner(options)
    report = AlignReport(out_dir)
    names = [p.relative_to(in_dir).as_posix() for p in photos]
    pool = ThreadPoolExecutor(max(1, options.threads))
    try:
        jobs = [pool.submit(aligner, p, out_dir / _crop_name(n), n) for p, n in zip(photos, names, strict=True)]
        for job in track(jobs, len(jobs)):
            report.rows.append(job.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on Ctrl-C: finish the photos in hand, start no more
        if report.rows:
            out_dir.mkdir(parents=True, exist_ok=True)
            write_csv_atomic(out_dir / REPORT, pd.DataFrame(report.rows))
    return report
