"""`facecli export`: ONNX, torch.export (.pt2) and TorchScript files that carry their preprocessing, checked
against PyTorch. TorchScript is deprecated by PyTorch (`torch.jit.save`/`load` warn on the pinned torch) and
kept while it works; .pt2 is its successor."""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch

from facecli.checkpoint import load
from facecli.embed.backends import OnnxEmbedder
from facecli.embed.cache import file_hash
from facecli.embed.onnx_export import (
    MAX_BATCH,
    OPSET,
    RANDOM_INPUTS,
    ExportedGraph,
    check_agreement,
    export_onnx,
    read_faces,
    verification_inputs,
)
from facecli.errors import FaceCliError, unknown_choice
from facecli.exporting.int8 import (
    MAX_DROP,
    PairsCheck,
    calibration_batches,
    calibration_files,
    check_on_pairs,
    cpu_has_vnni,
    quantize,
)
from facecli.fileio import atomic_path, check_writable
from facecli.models import FaceEmbedder
from facecli.numbers import FRACTION, Bound, check_number
from facecli.runtime import resolve_runtime
from facecli.verification.scoring import PairsInput, check_pairs

ExportFormat = Literal["onnx", "pt2", "torchscript"]
EXPORT_FORMATS: tuple[str, ...] = get_args(ExportFormat)
SUFFIXES = {"onnx": ".onnx", "pt2": ".pt2", "torchscript": ".pt"}  # what each format's files are named
TORCHSCRIPT_CONFIG = "facecli.json"  # the config, as an extra file of a .pt2 or TorchScript archive
# the fp32 graph an int8 export quantises is a working file, written at opset 17 at most, so by the legacy
# exporter: the graphs int8's speed and accuracy were measured on (RESULTS.md). Quantised from the legacy
# exporter's opset-18 graph instead (ONNX Runtime's symbolic shape inference fails on those), an untrained
# mobilenet's worst cosine to fp32 was 0.9857 against 0.9957 (benchmarks/int8.py --no-train, one run each)
INT8_OPSET = 17


@dataclass
class ExportResult:
    """What was written and how closely it matches PyTorch."""

    path: Path
    format: str
    max_abs_diff: float | None = None
    min_cosine: float | None = None
    inputs_checked: int = 0
    exporter: str | None = None  # for ONNX: torch.export's exporter, or the legacy one and why
    pairs_check: PairsCheck | None = None  # --int8 --check-pairs: both models on the user's pairs
    note: str | None = None  # --int8: weights quantised per tensor


def _export_torchscript(model: FaceEmbedder, out: Path) -> None:
    h, w = model.config.input_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(ExportedGraph(model).eval(), torch.randn(2, 3, h, w))
    torch.jit.save(traced, str(out), _extra_files={TORCHSCRIPT_CONFIG: json.dumps(model.config.to_dict())})


def _export_pt2(model: FaceEmbedder, out: Path) -> None:
    """A torch.export ExportedProgram of any batch size (up to MAX_BATCH), the config inside."""
    h, w = model.config.input_size
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(
            ExportedGraph(model).eval(), (torch.randn(2, 3, h, w),), dynamic_shapes={"x": {0: batch}}
        )
    torch.export.save(program, str(out), extra_files={TORCHSCRIPT_CONFIG: json.dumps(model.config.to_dict())})


def _run_exported(path: Path, fmt: str, x: torch.Tensor) -> np.ndarray:
    if fmt == "onnx":
        return OnnxEmbedder(path).run(x.numpy())
    if fmt == "pt2":
        loaded = torch.export.load(str(path)).module()
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit.load's deprecation: TorchScript is kept while it works
            loaded = torch.jit.load(str(path))
    with torch.inference_mode():
        output = loaded(x)
    return OnnxEmbedder.features([part.numpy() for part in output] if isinstance(output, tuple) else [output.numpy()])


def verify_export(path: Path, fmt: str, model: FaceEmbedder, x: torch.Tensor, precision: str) -> tuple[float, float]:
    """Max abs difference and minimum cosine similarity between the exported model and PyTorch fp32."""
    return check_agreement(path.name, _run_exported(path, fmt, x), model, x, precision)


OPSETS = Bound(7, 30, integer=True)  # what ONNX has numbered; an opset too old for an operator fails in _exported


def _exported(model: FaceEmbedder, tmp: Path, opset: int, static_batch: int | None, fp16: bool) -> str:
    """The ONNX export (which exporter wrote it), an operator the opset lacks said in one line."""
    try:
        return export_onnx(model, tmp, opset, static_batch, fp16)
    except torch.onnx.OnnxExporterError as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise FaceCliError(f"--opset {opset}: {reason} (the default, {OPSET}, exports every facecli model)") from None


def _check_suffix(out: Path, fmt: str) -> None:
    """Refuse an output named as another format's file (an ONNX graph in `model.pt`)."""
    named = next((other for other, suffix in SUFFIXES.items() if out.suffix.lower() == suffix), fmt)
    if named != fmt:
        raise FaceCliError(
            f"{out}: a {out.suffix} file is {named}, not {fmt}; name it {out.with_suffix(SUFFIXES[fmt]).name} "
            f"or pass --format {named}"
        )


def export(
    *,
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    fmt: ExportFormat = "onnx",
    opset: int = OPSET,
    static_batch: int | None = None,
    fp16: bool = False,
    verify: bool = True,
    verify_images: list[Path] | None = None,
    force: bool = False,
    int8: bool = False,
    calibrate: str | os.PathLike[str] | None = None,
    check: PairsInput | None = None,
    max_drop: float = MAX_DROP,
) -> ExportResult:
    """Export a checkpoint to ONNX, .pt2 or TorchScript with its config inside; verify against PyTorch by default. With
    `int8`, an ONNX graph quantised to int8, its activations calibrated on the face crops `calibrate` holds."""
    out = Path(out)
    if fmt not in EXPORT_FORMATS:
        raise unknown_choice("export format", fmt, EXPORT_FORMATS)
    if fp16 and fmt != "onnx":
        raise FaceCliError("--fp16 is for ONNX graphs; .pt2 and TorchScript users can call .half() after loading")
    if int8 and (fmt != "onnx" or fp16):
        raise FaceCliError(f"--int8 makes an ONNX graph (ONNX Runtime runs it); drop --format {fmt} and --fp16")
    if int8 and calibrate is None:
        raise FaceCliError("--int8 needs --calibrate FACES: a folder or list of a few hundred of your face crops")
    if check is not None and not int8:
        raise FaceCliError("--check-pairs checks an --int8 export against the fp32 model; add --int8")
    check_number("--max-drop", max_drop, FRACTION)
    checked = None if check is None else check_pairs(check)  # a malformed file, a missing image: before any work
    if static_batch and fmt != "onnx":
        raise FaceCliError(f"--static-batch is for ONNX; a {fmt} export takes any batch size")
    check_number("--opset", opset, OPSETS)
    _check_suffix(out, fmt)
    check_writable(out, force=force, inputs=(checkpoint, calibrate))
    faces = read_faces(verify_images)  # an unreadable one: before any work
    model = load(checkpoint)
    batches = calibration_batches(calibration_files(calibrate), model.config) if int8 else []  # checked first
    result = ExportResult(out, "onnx int8" if int8 else fmt)
    with atomic_path(out) as tmp:  # a file that fails verification never appears at `out`
        if int8:
            with tempfile.TemporaryDirectory(prefix="facecli-int8-") as work:
                fp32 = Path(work) / "fp32.onnx"
                result.exporter = _exported(model, fp32, min(opset, INT8_OPSET), static_batch, False)
                result.note = quantize(fp32, tmp, batches, file_hash(checkpoint), not cpu_has_vnni())
        elif fmt == "onnx":
            result.exporter = _exported(
                load(checkpoint) if fp16 else model, tmp, opset, static_batch, fp16
            )  # fp16 halves its copy
        elif fmt == "pt2":
            _export_pt2(model, tmp)
        else:
            _export_torchscript(model, tmp)
        if verify:
            x = verification_inputs(model, faces)
            if int8:  # faces only: the calibrated ranges are faces', random tensors fall outside them
                x = torch.cat([x[RANDOM_INPUTS:], torch.from_numpy(batches[0][:8])])
            precision = "int8" if int8 else "fp16" if fp16 else "fp32"
            result.max_abs_diff, result.min_cosine = verify_export(tmp, fmt, model, x, precision)
            result.inputs_checked = len(x)
        if check is not None:
            runtime = resolve_runtime("cpu")
            result.pairs_check = check_on_pairs(Path(checkpoint), tmp, checked, check.metric, runtime, max_drop)
    return result
