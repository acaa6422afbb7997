"""The resumable training state file (`last_state.pt`): tensors and plain containers with a digest, read
back without unpickling code; and the RNG states it carries."""

from __future__ import annotations

import hashlib
import os
import pickle
import random
from pathlib import Path

import numpy as np
import torch

from facecli.errors import FaceCliError
from facecli.fileio import atomic_path


def rng_state() -> dict:
    """Python, NumPy and torch RNG states in a form `torch.load(weights_only=True)` accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype("int64")),
            "pos": pos,
            "has_gauss": has_gauss,
            "cached": cached,
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Undo `rng_state`."""
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype("uint32"), n["pos"], n["has_gauss"], n["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def state_digest(value: object) -> str:
    """SHA-256 of a training state: every tensor's bytes and every other value's repr, in a fixed order."""
    digest = hashlib.sha256()

    def walk(item: object) -> None:
        if isinstance(item, dict):
            for key in sorted(item, key=str):
                digest.update(f"<{key!r}>".encode())
                walk(item[key])
        elif isinstance(item, list | tuple):
            digest.update(b"[")
            for element in item:
                walk(element)
            digest.update(b"]")
        elif isinstance(item, torch.Tensor):
            tensor = item.detach().cpu().contiguous()
            digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            digest.update(repr(item).encode())

    walk(value)
    return digest.hexdigest()


def save_training_state(path: str | os.PathLike[str], state: dict) -> Path:
    """Write resumable training state (optimizer, scheduler, scaler, epoch, RNG ...) atomically, with its digest."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({"state": state, "sha256": state_digest(state)}, tmp)
    return path


def load_training_state(path: str | os.PathLike[str]) -> dict:
    """Read training state with `weights_only=True`: tensors and plain containers only, never code."""
    path = Path(path)
    if not path.is_file():
        raise FaceCliError(f"{path}: no training state to resume from")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise FaceCliError(f"{path}: damaged, unreadable or unsafe training state ({reason})") from None
    if isinstance(saved, dict) and "sha256" not in saved and "model" in saved and "optimizer" in saved:
        return saved  # written before states carried a digest: resumed as it is
    if not isinstance(saved, dict) or "sha256" not in saved or state_digest(saved.get("state")) != saved["sha256"]:
        raise FaceCliError(f"{path}: damaged training state: it does not match the checksum written with it")
    return saved["state"]
