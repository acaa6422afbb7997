"""Model files: safetensors weights with the model's JSON config in the header; never unpickled."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from facecli.errors import FaceCliError
from facecli.fileio import atomic_path, check_writable
from facecli.models import FaceEmbedder, ModelConfig, create_model

CONFIG_KEY = "facecli"
DIGEST_KEY = "facecli_sha256"  # of the weights, checked on load: a damaged file is named, not used
PICKLE_MAGIC = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def _refuse_pickle(path: Path) -> None:
    with path.open("rb") as f:
        head = f.read(4)
    if head.startswith(PICKLE_MAGIC):
        raise FaceCliError(
            f"{path}: a pickled PyTorch file; facecli never unpickles model files "
            "(convert published weights with 'facecli import')"
        )


def read_config(path: str | os.PathLike[str]) -> ModelConfig:
    """The ModelConfig stored in a checkpoint's header, without reading the weights."""
    path = Path(path)
    if path.is_dir():
        kept = [name for name in ("best.safetensors", "last.safetensors") if (path / name).is_file()]
        hint = f"give one of its model files: {path / kept[0]}" if kept else "give a model file"
        raise FaceCliError(f"{path}: a folder, not a model file; {hint}")
    if not path.is_file():
        raise FaceCliError(f"{path}: no such checkpoint file")
    _refuse_pickle(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise FaceCliError(f"{path}: not a readable .safetensors file ({exc})") from None
    if CONFIG_KEY not in metadata:
        raise FaceCliError(f"{path}: no facecli config in its metadata; convert other weights with 'facecli import'")
    try:
        data = json.loads(metadata[CONFIG_KEY])
        if not isinstance(data, dict):
            raise TypeError(f"expected an object, got a JSON {type(data).__name__}")
        return ModelConfig.from_dict(data)
    except (json.JSONDecodeError, TypeError) as exc:
        raise FaceCliError(f"{path}: corrupt facecli config in its metadata ({exc})") from None
    except FaceCliError as exc:
        raise FaceCliError(f"{path}: {exc}") from None


def state_problems(
    expected: dict[str, torch.Tensor],
    state: dict[str, torch.Tensor],
    name: Callable[[str], str] = str,
    optional: str | None = None,
) -> list[str]:
    """Every missing, unexpected or wrongly-shaped tensor of `state`, each key shown as `name(key)`.

    Keys of `expected` starting with `optional` may be missing.
    """
    problems = [f"missing {name(k)}" for k in expected if k not in state and not (optional and k.startswith(optional))]
    problems += [f"unexpected {name(k)}" for k in state if k not in expected]
    problems += [
        f"{name(k)}: shape {tuple(v.shape)}, expected {tuple(expected[k].shape)}"
        for k, v in state.items()
        if k in expected and v.shape != expected[k].shape
    ]
    return problems


def _check_state(path: Path, model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    problems = state_problems(model.state_dict(), state)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise FaceCliError(f"{path}: weights do not fit backbone '{model.config.backbone}': {shown}")


def load(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> FaceEmbedder:
    """Rebuild a model from a checkpoint file alone, in eval mode."""
    path = Path(path)
    config = read_config(path)
    model = create_model(config)
    try:
        state = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise FaceCliError(f"{path}: cannot read the weights ({exc})") from None
    with safe_open(str(path), framework="pt") as f:
        written = (f.metadata() or {}).get(DIGEST_KEY)
    if written is not None and written != weights_digest(state):
        raise FaceCliError(f"{path}: damaged: its weights do not match the checksum written with them")
    _check_state(path, model, state)
    model.load_state_dict(state)
    return model.to(device).eval()


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 of every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _write_model(path: Path, state: dict[str, torch.Tensor], config: ModelConfig) -> None:
    metadata = {CONFIG_KEY: json.dumps(config.to_dict()), DIGEST_KEY: weights_digest(state)}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)


def save_model(model: FaceEmbedder, path: str | os.PathLike[str], force: bool = False) -> Path:
    """Write weights and config to a .safetensors file atomically; refuses to overwrite without force."""
    path = Path(path)
    check_writable(path, force=force)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    _write_model(path, state, model.config)
    return path


def update_config(path: str | os.PathLike[str], **changes: object) -> ModelConfig:
    """Rewrite a checkpoint with some config fields changed (weights untouched), atomically."""
    path = Path(path)
    config = read_config(path)
    for key, value in changes.items():
        if not hasattr(config, key):
            raise FaceCliError(f"unknown checkpoint config field '{key}'")
        setattr(config, key, value)
    _write_model(path, load_file(str(path)), config)
    return config
