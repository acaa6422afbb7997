"""`facecli export`: ONNX and TorchScript files that carry their preprocessing, checked against PyTorch."""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facecli.checkpoint import load
from facecli.data.images import read_image
from facecli.data.synth import identity_traits, render_image
from facecli.embed.backends import OnnxEmbedder, set_onnx_metadata
from facecli.errors import FaceCliError, unknown_choice
from facecli.fileio import atomic_path, check_writable
from facecli.models import FaceEmbedder

ExportFormat = Literal["onnx", "torchscript"]
EXPORT_FORMATS: tuple[str, ...] = get_args(ExportFormat)
TORCHSCRIPT_CONFIG = "facecli.json"
TOLERANCE = {"fp32": (1e-4, 0.9999), "fp16": (2e-2, 0.999)}  # max abs difference, min cosine similarity


class HalfPrecision(nn.Module):
    """Runs a model in float16 between float32 input and a float32, L2-normalised output."""

    def __init__(self, model: FaceEmbedder) -> None:
        super().__init__()
        self.model = model.half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.neck(self.model.trunk(x.half())).float(), dim=1)


@dataclass
class ExportResult:
    """What was written and how closely it matches PyTorch."""

    path: Path
    format: str
    max_abs_diff: float | None = None
    min_cosine: float | None = None
    inputs_checked: int = 0


def _export_onnx(net: nn.Module, model: FaceEmbedder, out: Path, opset: int, static_batch: int | None) -> None:
    import onnx

    h, w = model.config.input_size
    dummy = torch.randn(static_batch or 2, 3, h, w)
    dynamic = None if static_batch else {"input": {0: "batch"}, "embedding": {0: "batch"}}
    with atomic_path(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its own deprecation
        torch.onnx.export(
            net,
            (dummy,),
            str(tmp),
            input_names=["input"],
            output_names=["embedding"],
            dynamic_axes=dynamic,
            opset_version=opset,
            dynamo=False,
        )
        graph = onnx.load(str(tmp))
        set_onnx_metadata(graph, model.config)
        onnx.save(graph, str(tmp))


def _export_torchscript(net: nn.Module, model: FaceEmbedder, out: Path) -> None:
    h, w = model.config.input_size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, torch.randn(2, 3, h, w))
    torch.jit.save(traced, str(out), _extra_files={TORCHSCRIPT_CONFIG: json.dumps(model.config.to_dict())})


def verification_inputs(model: FaceEmbedder, images: list[Path] | None) -> torch.Tensor:
    """Random tensors plus face images (the given files, else synthetic faces) preprocessed as the model expects."""
    h, w = model.config.input_size
    generator = torch.Generator().manual_seed(0)
    random = torch.randn(4, 3, h, w, generator=generator)
    if images:
        decoded = [read_image(p) for p in images]
    else:
        rng = np.random.default_rng(0)
        decoded = [render_image(identity_traits(rng), max(h, w), rng) for _ in range(4)]
    return torch.cat([random, model.preprocess(decoded)])


def _run_exported(path: Path, fmt: str, x: torch.Tensor) -> np.ndarray:
    if fmt == "onnx":
        return OnnxEmbedder(path).run(x.numpy())
    loaded = torch.jit.load(str(path))
    with torch.inference_mode():
        return loaded(x).numpy()


def verify_export(path: Path, fmt: str, model: FaceEmbedder, x: torch.Tensor, fp16: bool) -> tuple[float, float]:
    """Max abs difference and minimum cosine similarity between the exported model and PyTorch fp32."""
    with torch.inference_mode():
        expected = model.float().eval()(x).numpy()
    got = _run_exported(path, fmt, x).astype(np.float32)
    diff = float(np.abs(got - expected).max())
    with np.errstate(invalid="ignore", divide="ignore"):  # a zero output gives NaN, which fails the check below
        norms = np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1)
        cosine = float(((got * expected).sum(1) / norms).min())
    max_diff, min_cos = TOLERANCE["fp16" if fp16 else "fp32"]
    if not (diff < max_diff and cosine > min_cos):
        raise FaceCliError(
            f"{path.name}: exported model disagrees with PyTorch (max abs diff {diff:.2e}, need < {max_diff:g}; "
            f"min cosine {cosine:.6f}, need > {min_cos}); nothing is wrong with the checkpoint, report this"
        )
    return diff, cosine


def export(
    *,
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str],
    fmt: ExportFormat = "onnx",
    opset: int = 17,
    static_batch: int | None = None,
    fp16: bool = False,
    verify: bool = True,
    verify_images: list[Path] | None = None,
    force: bool = False,
) -> ExportResult:
    """Export a checkpoint to ONNX or TorchScript with its config inside; verify against PyTorch by default."""
    out = Path(out)
    if fmt not in EXPORT_FORMATS:
        raise unknown_choice("export format", fmt, EXPORT_FORMATS)
    if fp16 and fmt != "onnx":
        raise FaceCliError("--fp16 is for ONNX graphs; TorchScript users can call .half() after loading")
    if static_batch and fmt != "onnx":
        raise FaceCliError("--static-batch is for ONNX; a TorchScript trace takes any batch size")
    check_writable(out, force=force)
    model = load(checkpoint)
    net = HalfPrecision(load(checkpoint)).eval() if fp16 else model
    result = ExportResult(out, fmt)
    with atomic_path(out) as tmp:  # a file that fails verification never appears at `out`
        if fmt == "onnx":
            _export_onnx(net, model, tmp, opset, static_batch)
        else:
            _export_torchscript(net, model, tmp)
        if verify:
            x = verification_inputs(model, verify_images)
            result.max_abs_diff, result.min_cosine = verify_export(tmp, fmt, model, x, fp16)
            result.inputs_checked = len(x)
    return result
