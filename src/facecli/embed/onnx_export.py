"""A facecli model as an ONNX graph that carries its config, and the check that it agrees with PyTorch.

`facecli export` writes such files for users; the automatic backend writes one per model into the ONNX
cache (embed/onnx_cache.py), checked the same way."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facecli.data.images import ImageError, read_image
from facecli.data.synth import identity_traits, render_image
from facecli.embed.backends import set_onnx_metadata
from facecli.errors import FaceCliError
from facecli.fileio import atomic_path
from facecli.models import FaceEmbedder

# max abs difference of the unit embeddings (and relative difference of a quality score), min cosine similarity;
# int8 is checked on face crops only (its activations are calibrated on faces, not on random tensors)
HINTS = {
    "fp32": "nothing is wrong with the checkpoint, report this",
    "int8": "int8 loses too much for this model: calibrate on more of your faces, or keep the fp32 export",
}
RANDOM_INPUTS = 4  # random tensors checked first, before the faces
OPSET = 18  # the default: torch.export's exporter writes opset 18 and newer
DYNAMO_FIRST_OPSET = 18  # below it, torch.export's exporter writes 18 anyway: the legacy exporter writes those
MAX_BATCH = 4096  # the largest batch the dynamic axis admits (torch.export needs a bound)
EXPORTER_KEY = "facecli_exporter"  # which exporter wrote the file, and why the legacy one when it did
TOLERANCE = {"fp32": (1e-4, 0.9999), "fp16": (2e-2, 0.999), "int8": (0.1, 0.99)}


class ExportedGraph(nn.Module):
    """What an exported file computes: the L2-normalised embedding and, for a model with a quality score, that
    score (the feature norm) as a second output; `fp16` runs the model in float16 between float32 ends."""

    def __init__(self, model: FaceEmbedder, fp16: bool = False) -> None:
        super().__init__()
        self.model = model.half() if fp16 else model
        self.fp16 = fp16
        self.quality = model.config.quality is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        features = self.model.features(x.half() if self.fp16 else x).float()
        embedding = F.normalize(features, dim=1)
        return (embedding, features.norm(dim=1)) if self.quality else embedding


def export_onnx(
    model: FaceEmbedder,
    out: Path,
    opset: int = OPSET,
    static_batch: int | None = None,
    fp16: bool = False,
    prefer: str = "torch.export",
) -> str:
    """Write `model` (as ExportedGraph computes it) to `out` with the model's config in the metadata; which
    exporter wrote it. `prefer`: torch.export's (PyTorch's own since 2.9) or `legacy`, the TorchScript-based
    one it deprecated; the other is the fallback. Opsets below torch.export's first (18) take the legacy one."""
    import onnx

    graph = ExportedGraph(model, fp16).eval()
    outputs = ["embedding", "quality"] if model.config.quality else ["embedding"]
    if opset < DYNAMO_FIRST_OPSET:
        order = [("legacy", f"torchscript (legacy, for opset {opset})")]
    else:
        names = {"torch.export": "torch.export", "legacy": "torchscript (legacy)"}
        order = sorted(names.items(), key=lambda item: item[0] != prefer)
    with atomic_path(out) as tmp:
        for n, (name, label) in enumerate(order):
            try:
                EXPORTERS[name](graph, tmp, outputs, opset, static_batch)
            except Exception as exc:  # noqa: BLE001 - the exporters raise many kinds for what they cannot trace
                if n == len(order) - 1:
                    raise
                failed = f"; {label} failed: {' '.join(str(exc).split())[:160]}"
                continue
            exporter = label + (failed if n else "")
            break
        written = onnx.load(str(tmp))
        set_onnx_metadata(written, model.config)
        written.metadata_props.add(key=EXPORTER_KEY, value=exporter)
        onnx.save(written, str(tmp))
    return exporter


def _dummy(graph: ExportedGraph, static_batch: int | None) -> torch.Tensor:
    h, w = graph.model.config.input_size
    return torch.randn(static_batch or 2, 3, h, w)


def _dynamo_export(graph: ExportedGraph, out: Path, outputs: list[str], opset: int, static_batch: int | None) -> None:
    """torch.onnx.export(dynamo=True): the graph torch.export captures, translated to ONNX."""
    dynamic = None if static_batch else {"x": {0: torch.export.Dim("batch", min=1, max=MAX_BATCH)}}
    printed = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(printed):  # it prints its progress
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph, (_dummy(graph, static_batch),), str(out), input_names=["input"], output_names=outputs,
            dynamic_shapes=dynamic, opset_version=opset, dynamo=True, verbose=False, external_data=False,
        )  # fmt: skip


def _legacy_export(graph: ExportedGraph, out: Path, outputs: list[str], opset: int, static_batch: int | None) -> None:
    """The TorchScript-based exporter (deprecated by PyTorch 2.9)."""
    dynamic = None if static_batch else {name: {0: "batch"} for name in ["input", *outputs]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its own deprecation
        torch.onnx.export(
            graph, (_dummy(graph, static_batch),), str(out), input_names=["input"], output_names=outputs,
            dynamic_axes=dynamic, opset_version=opset, dynamo=False,
        )  # fmt: skip


EXPORTERS = {"torch.export": _dynamo_export, "legacy": _legacy_export}


def read_faces(paths: list[Path] | None) -> list[np.ndarray] | None:
    """The `--verify-image` files decoded (None where none are given); an unreadable one is a one-line error."""
    if not paths:
        return None
    faces = []
    for path in paths:
        try:
            faces.append(read_image(path))
        except ImageError as exc:
            raise FaceCliError(f"--verify-image {path}: {exc}") from None
    return faces


def verification_inputs(model: FaceEmbedder, faces: list[np.ndarray] | None = None) -> torch.Tensor:
    """Random tensors plus face images (`faces`, decoded RGB, else synthetic faces) preprocessed as the model
    expects."""
    h, w = model.config.input_size
    generator = torch.Generator().manual_seed(0)
    random = torch.randn(RANDOM_INPUTS, 3, h, w, generator=generator)
    if faces:
        decoded = faces
    else:
        rng = np.random.default_rng(0)
        decoded = [render_image(identity_traits(rng), max(h, w), rng) for _ in range(4)]
    return torch.cat([random, model.preprocess(decoded)])


def check_agreement(
    name: str, got: np.ndarray, model: FaceEmbedder, x: torch.Tensor, precision: str = "fp32"
) -> tuple[float, float]:
    """Max abs difference and minimum cosine similarity between the L2-normalised `got` (an exported model's raw
    features for `x`, as OnnxEmbedder.run returns them) and PyTorch fp32, and for a model with a quality score
    the largest relative difference of the norms; an error past the tolerance."""
    with torch.inference_mode():
        features = model.float().eval().features(x).numpy()
    got = got.astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):  # a zero output gives NaN, which fails the check below
        got_norm, expected_norm = np.linalg.norm(got, axis=1), np.linalg.norm(features, axis=1)
        unit, expected = got / got_norm[:, None], features / expected_norm[:, None]
        diff = float(np.abs(unit - expected).max())
        cosine = float((unit * expected).sum(1).min())
        norm_diff = float((np.abs(got_norm - expected_norm) / expected_norm).max()) if model.config.quality else 0.0
    max_diff, min_cos = TOLERANCE[precision]
    if not (diff < max_diff and cosine > min_cos and norm_diff < max_diff):
        quality = f"; quality off by {norm_diff:.2e} relative" if model.config.quality else ""
        raise FaceCliError(
            f"{name}: exported model disagrees with PyTorch (max abs diff {diff:.2e}, need < {max_diff:g}; "
            f"min cosine {cosine:.6f}, need > {min_cos}{quality}); {HINTS.get(precision, HINTS['fp32'])}"
        )
    return diff, cosine
