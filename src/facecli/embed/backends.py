"""Inference backends behind one interface: PyTorch (a .safetensors checkpoint) or ONNX Runtime (.onnx)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Literal, Protocol, get_args

import numpy as np
import torch
from torch import nn

from facecli.checkpoint import load
from facecli.errors import FaceCliError, unknown_choice
from facecli.models import FaceEmbedder, ModelConfig
from facecli.runtime import Runtime

Backend = Literal["auto", "torch", "onnx"]
BACKENDS: tuple[str, ...] = get_args(Backend)
ONNX_CONFIG_KEY = "facecli"
ONNX_DIGEST_KEY = "facecli_sha256"  # of the initializers (the weights), checked on load


# images per forward pass when none is asked for (benchmarks/RESULTS.md, "Batch size per backend"):
# PyTorch on a CPU is fastest at small batches (mobilenet 160 px: 114 img/s at 8, 49 at 64), ONNX Runtime
# is flat from 8 to 64, GPUs want large batches
CPU_TORCH_BATCH = 8  # images per forward pass for PyTorch on a CPU (measured fastest)
DEFAULT_BATCH = 64  # elsewhere
NORM_EPS = 1e-12  # as torch.nn.functional.normalize: a zero vector stays zero


class Embedder(Protocol):
    """Anything that maps a preprocessed float batch to L2-normalised embeddings (and, for a model trained
    with a quality-aware head, each face's quality: the feature norm before normalisation)."""

    config: ModelConfig
    preferred_batch: int  # images per forward pass when the user asks for none

    def describe(self) -> str: ...

    def embed(self, batch: torch.Tensor, flip: bool) -> np.ndarray: ...

    def embed_scored(self, batch: torch.Tensor, flip: bool) -> tuple[np.ndarray, np.ndarray]: ...


def flip_merged(features: np.ndarray | torch.Tensor, count: int, flip: bool) -> tuple[np.ndarray, np.ndarray]:
    """Raw features of `count` images (then, with `flip`, of their mirror images) to L2-normalised embeddings,
    each view's embedding summed first, and each image's quality: the mean norm of its views."""
    features = np.asarray(features, np.float32)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    unit = features / np.maximum(norms, NORM_EPS)
    if flip:
        unit, norms = unit[:count] + unit[count:], (norms[:count] + norms[count:]) / 2
    return unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), NORM_EPS), norms[:, 0]


class RawFeatures(nn.Module):
    """A facecli model's output before L2 normalisation (its norm is the quality of a quality-aware model)."""

    def __init__(self, model: FaceEmbedder) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.features(x)


class TorchEmbedder:
    """A facecli model (from a checkpoint, or in training) run by PyTorch on the resolved runtime."""

    def __init__(self, model: FaceEmbedder, runtime: Runtime) -> None:
        self.config = model.config
        self.runtime = runtime.for_model(model.config.backbone, training=False)
        self.net = self.runtime.prepare(RawFeatures(model.eval()))
        self.preferred_batch = CPU_TORCH_BATCH if self.runtime.device.type == "cpu" else DEFAULT_BATCH

    def describe(self) -> str:
        return self.runtime.describe()

    def embed(self, batch: torch.Tensor, flip: bool) -> np.ndarray:
        return self.embed_scored(batch, flip)[0]

    def embed_scored(self, batch: torch.Tensor, flip: bool) -> tuple[np.ndarray, np.ndarray]:
        x = self.runtime.batch(batch)
        with torch.inference_mode(), self.runtime.autocast():
            features = self.net(torch.cat([x, x.flip(3)]) if flip else x).float()
        return flip_merged(features.cpu().numpy(), len(x), flip)


def onnx_config(path: str | os.PathLike[str]) -> ModelConfig:
    """The facecli config that `facecli export` stored in an ONNX file's metadata."""
    return onnx_config_of(path, onnx_metadata(path))


def onnx_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """An ONNX file's metadata, once its weights are checked against the digest written with them."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others for a bad file
        hint = "; --backend onnx runs a .onnx file (facecli export writes one)" if Path(path).suffix != ".onnx" else ""
        raise FaceCliError(f"{path}: not a readable ONNX file ({type(exc).__name__}){hint}") from None
    props = {p.key: p.value for p in model.metadata_props}
    if ONNX_CONFIG_KEY not in props:
        raise FaceCliError(f"{path}: no facecli metadata; export it with 'facecli export'")
    if ONNX_DIGEST_KEY in props and props[ONNX_DIGEST_KEY] != onnx_weights_digest(model):
        raise FaceCliError(f"{path}: damaged: its weights do not match the checksum written with them")
    return props


def onnx_config_of(path: str | os.PathLike[str], props: dict[str, str]) -> ModelConfig:
    """The config in an ONNX file's metadata `props` (as onnx_metadata read them)."""
    try:
        data = json.loads(props[ONNX_CONFIG_KEY])
        if not isinstance(data, dict):
            raise TypeError(f"expected an object, got a JSON {type(data).__name__}")
        return ModelConfig.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise FaceCliError(f"{path}: corrupt facecli metadata ({exc})") from None
    except FaceCliError as exc:
        raise FaceCliError(f"{path}: {exc}") from None


def onnx_weights_digest(model) -> str:  # noqa: ANN001
    """SHA-256 of an ONNX graph's initializers, each as serialized."""
    digest = hashlib.sha256()
    for tensor in model.graph.initializer:
        digest.update(tensor.SerializeToString())
    return digest.hexdigest()


class OnnxEmbedder:
    """An exported .onnx model run by ONNX Runtime (CUDA provider when present, else CPU)."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        self.config = onnx_config(path)
        available = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        options = ort.SessionOptions()
        # idle threads sleep instead of spinning: the loader workers share the cores (eval path, mobilenet
        # 160 px: 73-78% -> 79-81% of the model-only rate; the model alone is unchanged)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.input = self.session.get_inputs()[0]
        self.static_batch = self.input.shape[0] if isinstance(self.input.shape[0], int) else None
        self.preferred_batch = self.static_batch or DEFAULT_BATCH

    def describe(self) -> str:
        return f"runtime: onnxruntime ({self.session.get_providers()[0]})"

    def run(self, x: np.ndarray) -> np.ndarray:
        """Raw model output for a float32 batch (padded to a static batch size when the graph has one): the
        embedding, times its quality where the graph also outputs one (then it is the raw feature)."""
        if self.static_batch is None:
            return self.features(self.session.run(None, {self.input.name: x}))
        chunks = []
        for start in range(0, len(x), self.static_batch):
            part = x[start : start + self.static_batch]
            padded = np.concatenate([part, np.zeros((self.static_batch - len(part), *part.shape[1:]), part.dtype)])
            chunks.append(self.features(self.session.run(None, {self.input.name: padded}))[: len(part)])
        return np.concatenate(chunks)

    @staticmethod
    def features(outputs: list[np.ndarray]) -> np.ndarray:
        """The raw features behind an exported graph's outputs: its embedding, times its quality where it has one."""
        embedding = outputs[0].astype(np.float32)
        return embedding * outputs[1].astype(np.float32)[:, None] if len(outputs) > 1 else embedding

    def embed(self, batch: torch.Tensor, flip: bool) -> np.ndarray:
        return self.embed_scored(batch, flip)[0]

    def embed_scored(self, batch: torch.Tensor, flip: bool) -> tuple[np.ndarray, np.ndarray]:
        x = batch.numpy().astype(np.float32)
        features = self.run(np.concatenate([x, x[..., ::-1]]) if flip else x)
        return flip_merged(features, len(x), flip)


def check_backend(name: str) -> Backend:
    """`name` if it is a backend, else a one-line error listing them."""
    if name not in BACKENDS:
        raise unknown_choice("backend", name, BACKENDS)
    return name  # type: ignore[return-value]


def open_embedder(path: str | os.PathLike[str], backend: Backend, runtime: Runtime) -> Embedder:
    """The model file behind the chosen backend."""
    path = Path(path)
    if not path.is_file():
        raise FaceCliError(f"{path}: no such model file")
    if backend == "onnx":
        return OnnxEmbedder(path)
    if backend == "torch":
        if path.suffix == ".onnx":
            raise FaceCliError(f"{path} is an ONNX file; pass --backend onnx")
        return TorchEmbedder(load(path), runtime)
    raise unknown_choice("backend", backend, BACKENDS)


def file_backend(path: str | os.PathLike[str], backend: Backend) -> Backend:
    """The kind of model file: `onnx` or `torch` (`auto` goes by the file's suffix)."""
    if backend == "auto":
        return "onnx" if Path(path).suffix == ".onnx" else "torch"
    return backend


def model_config(path: str | os.PathLike[str], backend: Backend) -> ModelConfig:
    """The config of a .safetensors checkpoint or an exported .onnx file."""
    from facecli.checkpoint import read_config

    return onnx_config(path) if file_backend(path, backend) == "onnx" else read_config(path)


def save_threshold(path: str | os.PathLike[str], backend: Backend, threshold: float, metric: str) -> None:
    """Store a calibrated threshold in the model file's metadata, atomically."""
    if file_backend(path, backend) == "torch":
        from facecli.checkpoint import update_config

        update_config(path, threshold=threshold, threshold_metric=metric)
        return
    import onnx

    from facecli.fileio import atomic_path

    model = onnx.load(str(path))
    config = onnx_config(path)
    config.threshold, config.threshold_metric = threshold, metric
    set_onnx_metadata(model, config)
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))


def set_onnx_metadata(model, config: ModelConfig) -> None:  # noqa: ANN001
    """Write the facecli config, and its main fields one by one for other consumers, into metadata_props."""
    fields = {
        ONNX_CONFIG_KEY: json.dumps(config.to_dict()),
        "input_size": f"{config.input_size[0]}x{config.input_size[1]}",
        "channel_order": config.channel_order,
        "normalisation": f"(x/255 - mean) / std, mean={list(config.mean)}, std={list(config.std)}",
        "resize": config.resize,
        "embedding_size": str(config.embedding_size),
        "threshold": "" if config.threshold is None else f"{config.threshold} ({config.threshold_metric})",
        ONNX_DIGEST_KEY: onnx_weights_digest(model),
    }
    existing = {p.key: p for p in model.metadata_props}
    for key, value in fields.items():
        prop = existing.get(key) or model.metadata_props.add()
        prop.key, prop.value = key, value
