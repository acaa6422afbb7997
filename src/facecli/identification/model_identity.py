"""What a gallery remembers of its model: the digest of the weights the file carries, with what decides how
an image becomes an embedding (backbone, sizes, normalisation). Rewriting a model file's other metadata, as
`sweep --save-threshold` does, leaves it unchanged, so galleries built with the model keep working; other
weights or another preprocessing change it."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from facecli.embed.cache import file_hash
from facecli.models import ModelConfig

EMBEDDING_FIELDS = ("backbone", "embedding_size", "input_size", "mean", "std", "channel_order", "resize")


def model_identity(path: str | os.PathLike[str]) -> str:
    """16 hex digits naming the weights and preprocessing of a .safetensors or .onnx model file; a file from
    before weight digests were written is named by its bytes."""
    path = Path(path)
    digest, config = _written_digest(path)
    if digest is None:
        return file_hash(path)
    fields = {name: config.to_dict()[name] for name in EMBEDDING_FIELDS}
    return hashlib.sha256(f"{digest}|{json.dumps(fields, sort_keys=True)}".encode()).hexdigest()[:16]


def identities(path: str | os.PathLike[str]) -> set[str]:
    """Every name a gallery may have stored for this model: its identity, and its bytes' hash, which galleries
    built before identities were used hold."""
    return {model_identity(path), file_hash(path)}


def _written_digest(path: Path) -> tuple[str | None, ModelConfig]:
    if path.suffix.lower() == ".onnx":
        from facecli.embed.backends import ONNX_DIGEST_KEY, onnx_config_of, onnx_metadata

        props = onnx_metadata(path)
        return props.get(ONNX_DIGEST_KEY), onnx_config_of(path, props)
    from safetensors import safe_open

    from facecli.checkpoint import DIGEST_KEY, read_config

    config = read_config(path)  # a one-line error for a file that is no model
    with safe_open(str(path), framework="pt") as f:
        return (f.metadata() or {}).get(DIGEST_KEY), config
