"""A facecli model as an ONNX graph that carries its config, and the check that it agrees with PyTorch.

`facecli export` writes such files for users; the automatic backend writes one per model into the ONNX
cache (embed/onnx_cache.py), checked the same way."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from facecli.data.images import read_image
from facecli.data.synth import identity_traits, render_image
from facecli.embed.backends import set_onnx_metadata
from facecli.errors import FaceCliError
from facecli.fileio import atomic_path
from facecli.models import FaceEmbedder

TOLERANCE = {"fp32": (1e-4, 0.9999), "fp16": (2e-2, 0.999)}  # max abs difference, min cosine similarity


def export_onnx(
    net: nn.Module, model: FaceEmbedder, out: Path, opset: int = 17, static_batch: int | None = None
) -> None:
    """Write `net` (the model, or a wrapper of it) to `out` with the model's config in the metadata."""
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


def verification_inputs(model: FaceEmbedder, images: list[Path] | None = None) -> torch.Tensor:
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


def check_agreement(
    name: str, got: np.ndarray, model: FaceEmbedder, x: torch.Tensor, fp16: bool
) -> tuple[float, float]:
    """Max abs difference and minimum cosine similarity between `got` (an exported model's output for `x`) and
    PyTorch fp32; an error past the tolerance."""
    with torch.inference_mode():
        expected = model.float().eval()(x).numpy()
    got = got.astype(np.float32)
    diff = float(np.abs(got - expected).max())
    with np.errstate(invalid="ignore", divide="ignore"):  # a zero output gives NaN, which fails the check below
        norms = np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1)
        cosine = float(((got * expected).sum(1) / norms).min())
    max_diff, min_cos = TOLERANCE["fp16" if fp16 else "fp32"]
    if not (diff < max_diff and cosine > min_cos):
        raise FaceCliError(
            f"{name}: exported model disagrees with PyTorch (max abs diff {diff:.2e}, need < {max_diff:g}; "
            f"min cosine {cosine:.6f}, need > {min_cos}); nothing is wrong with the checkpoint, report this"
        )
    return diff, cosine
