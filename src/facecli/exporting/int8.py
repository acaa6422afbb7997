"""int8 ONNX graphs for CPUs: static quantisation with ONNX Runtime's own tools (QDQ format, per-channel int8
weights, activations calibrated on the user's face crops), the facecli metadata carried over, and the hash of
the model it came from recorded.

`reduce_range` (7-bit weights) is for CPUs without VNNI, where u8 x s8 products can saturate in the 16-bit
accumulation of AVX2/AVX-512 without it (ONNX Runtime's quantisation guide): it is on exactly when this CPU's
flags show neither avx512_vnni nor avx_vnni.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecli.data.images import ImageError, image_files, looks_grey, read_image
from facecli.embed.backends import onnx_config, save_threshold, set_onnx_metadata
from facecli.embed.files import EmbedOptions
from facecli.errors import FaceCliError
from facecli.fileio import read_text
from facecli.models import ModelConfig
from facecli.runtime import Runtime
from facecli.verification.api import DEFAULT_SELECTION, Selection, threshold_table
from facecli.verification.metrics import Metric, VerificationReport, verification_report
from facecli.verification.scoring import CheckedPairs, labelled, score_pairs

CALIBRATION_IMAGES = 300  # faces calibrated on by default ("a few hundred": enough to fix each tensor's range)
CALIBRATION_BATCH = 16
# kept in float: the first convolution, whose input is the image itself (mobilenet 64 px, 50 faces: min cosine
# to fp32 0.9876 all int8, 0.9909 with it in float, 0.9913 also with the embedding layer; RESULTS.md)
KEPT_FLOAT = "the first Conv"
INT8_KEY = "facecli_int8"  # metadata: how the graph was quantised, and the hash of the fp32 model it came from


def cpu_has_vnni(cpuinfo: str | None = None) -> bool:
    """Whether this CPU has VNNI (int8 dot products without 16-bit saturation); False where unknown."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    flags = set(cpuinfo.split())
    return bool(flags & {"avx512_vnni", "avx_vnni"})


def calibration_files(source: str | os.PathLike[str], count: int = CALIBRATION_IMAGES) -> list[Path]:
    """Up to `count` face crops from a folder or a list file (`id;path` or `path` lines), spread evenly over it."""
    source = Path(source)
    if source.is_dir():
        try:
            files = image_files(source)
        except FaceCliError as exc:  # an empty folder, an unreadable one
            raise FaceCliError(f"--calibrate: {exc}; give a few hundred face crops to calibrate on") from None
    elif source.is_file():
        lines = [line.strip().rpartition(";")[2] for line in read_text(source).splitlines() if line.strip()]
        files = [Path(p) if Path(p).is_absolute() else source.parent / p for p in lines]
    else:
        raise FaceCliError(f"--calibrate {source}: no such folder or list of images")
    if not files:
        raise FaceCliError(f"--calibrate {source}: no images to calibrate on; give a few hundred face crops")
    if len(files) > count:
        files = [files[i] for i in np.linspace(0, len(files) - 1, count).round().astype(int)]
    return files


def calibration_batches(files: list[Path], config: ModelConfig) -> list[np.ndarray]:
    """The crops preprocessed as the model expects, in batches; a crop of another size, or one that does not
    decode, is a one-line error naming it (calibration on raw photos would fix the wrong ranges)."""
    images = []
    for path in files:
        try:
            image = read_image(path)
        except ImageError as exc:
            raise FaceCliError(f"--calibrate: {path}: {exc}") from None
        if image.shape[:2] != config.input_size:
            h, w = config.input_size
            raise FaceCliError(
                f"--calibrate: {path} is {image.shape[1]}x{image.shape[0]}; calibrate on face crops of the model's "
                f"input size, {w}x{h} (facecli align makes them)"
            )
        images.append(image)
    _check_colour(images, config)
    return [
        config.preprocessing.batch(images[start : start + CALIBRATION_BATCH]).numpy().astype(np.float32)
        for start in range(0, len(images), CALIBRATION_BATCH)
    ]


# a calibration set "of the other colour": nearly all grey for a model trained on colour faces, or nearly all
# colour for one trained on grey; its activation ranges would not be those the model meets
WRONG_COLOUR_SHARE = 0.9


def _check_colour(images: list[np.ndarray], config: ModelConfig) -> None:
    if config.colour is None:  # a model from before facecli recorded it
        return
    grey = sum(looks_grey(image) for image in images)
    other = grey if config.colour == "colour" else len(images) - grey
    if other >= WRONG_COLOUR_SHARE * len(images):
        kind = "greyscale" if config.colour == "colour" else "colour"
        raise FaceCliError(
            f"--calibrate: {other} of {len(images)} crops are {kind}, but the model was trained on "
            f"{config.colour} faces; calibrate on faces like those it will see"
        )


class _PerTensorWeights(logging.Filter):
    """Drops, and keeps the names from, the root-logger warning ONNX Runtime prints for each weight with no
    channel axis (a 1-D weight, such as an iresnet's pre-activation BatchNorm scale, which cannot be folded
    into a convolution), which it then quantises per tensor: dozens of lines for one fact."""

    PATTERN = re.compile(r"Axis -?\d+ is out-of-range for weight '([^']+)'")

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        found = self.PATTERN.search(record.getMessage())
        if found:
            self.names.append(found.group(1))
        return found is None

    def note(self) -> str | None:
        if not self.names:
            return None
        return (f"{len(self.names)} weight(s) without a channel axis quantised per tensor, e.g. {self.names[0]} "
                "(BatchNorms that cannot be folded into a convolution)")  # fmt: skip


def quantize(fp32: Path, out: Path, batches: list[np.ndarray], source_hash: str, reduce_range: bool) -> str | None:
    """Write the int8 graph of the fp32 export `fp32` (in a folder of its own, which gets a working copy) to
    `out`, calibrated on `batches`, with the facecli metadata and how it was made; returns a note on weights
    quantised per tensor, if any."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.left = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.left, None)
            return None if batch is None else {"input": batch}

    config = onnx_config(fp32)
    prepared = fp32.with_name("prepared.onnx")  # shapes inferred, batch norms folded: ONNX Runtime's first step
    quant_pre_process(str(fp32), str(prepared))
    first_conv = next((node.name for node in onnx.load(str(prepared)).graph.node if node.op_type == "Conv"), None)
    per_tensor = _PerTensorWeights()
    logging.getLogger().addFilter(per_tensor)  # ONNX Runtime logs on the root logger
    try:
        _quantize_static(prepared, out, Batches(), reduce_range, first_conv)
    finally:
        logging.getLogger().removeFilter(per_tensor)
    graph = onnx.load(str(out))
    set_onnx_metadata(graph, config)
    made = {"calibration_images": int(sum(len(b) for b in batches)), "reduce_range": reduce_range,
            "source_sha256": source_hash, "kept_float": KEPT_FLOAT, "per_tensor_weights": len(per_tensor.names),
            "format": "QDQ, per-channel int8 weights, uint8 activations"}  # fmt: skip
    prop = graph.metadata_props.add()
    prop.key, prop.value = INT8_KEY, json.dumps(made)
    onnx.save(graph, str(out))
    return per_tensor.note()


def _quantize_static(prepared: Path, out: Path, reader: object, reduce_range: bool, first_conv: str | None) -> None:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    quantize_static(
        str(prepared),
        str(out),
        reader,
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        reduce_range=reduce_range,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=[first_conv] if first_conv else None,  # KEPT_FLOAT
    )


# the accuracy an int8 model may lose on the check pairs before the export fails: half a point, the accuracy
# target of issue 35 (Intel's int8 ArcFace R100 moved LFW by +0.02 points: more than half a point lost means
# the calibration did not fit this model or these faces)
MAX_DROP = 0.005


@dataclass
class PairsCheck:
    """Both models on the user's pairs: accuracy, TAR at the FARs the pairs allow, the largest score change."""

    fp32: VerificationReport
    int8: VerificationReport
    largest_difference: float
    threshold: float | None = None  # the int8 model's own, chosen as `sweep --save-threshold` chooses


def check_on_pairs(
    fp32: Path, int8: Path, checked: CheckedPairs, metric: Metric, runtime: Runtime, max_drop: float
) -> PairsCheck:
    """Score the `checked` pairs with both models; an error when int8 loses more than `max_drop` accuracy, else
    the int8 file gets its own threshold, chosen on these pairs as `sweep --save-threshold` chooses, in its
    metadata."""
    scored = [score_pairs(path, checked, metric, EmbedOptions(runtime, backend, workers=0))
              for path, backend in ((fp32, "auto"), (int8, "onnx"))]  # fmt: skip
    labels = labelled(scored[0])
    reports = [verification_report(s.scores, labels, metric) for s in scored]
    found = PairsCheck(*reports, float(np.abs(scored[0].scores - scored[1].scores).max()))
    drop = found.fp32.accuracy_mean - found.int8.accuracy_mean
    if drop > max_drop:
        raise FaceCliError(
            f"{checked.pairs.source}: the int8 model verifies at {found.int8.accuracy_mean:.4f} against fp32's "
            f"{found.fp32.accuracy_mean:.4f}, {drop:.4f} lower (--max-drop {max_drop:g}); nothing was written"
        )
    _, found.threshold = threshold_table(scored[1], Selection.parse(DEFAULT_SELECTION))
    save_threshold(int8, "onnx", found.threshold, metric)
    return found
