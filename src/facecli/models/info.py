"""Sizes and costs of registered backbones, measured on the meta device (no memory, no weights)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from facecli.models.embedder import create_model
from facecli.models.spec import BackboneSpec
from facecli.registry import BACKBONES


@dataclass(frozen=True)
class BackboneInfo:
    """One row of `facecli models`."""

    name: str
    input_size: int
    params: int
    gflops: float
    embedding_size: int
    source: str


def backbone_info(name: str) -> BackboneInfo:
    """Parameter count and forward GFLOPs (multiply-adds counted as 2) at the native input size."""
    spec: BackboneSpec = BACKBONES.get(name)
    with torch.device("meta"):
        model = create_model(name).eval()
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(torch.empty(1, 3, spec.input_size, spec.input_size))
    return BackboneInfo(
        name=name,
        input_size=spec.input_size,
        params=sum(p.numel() for p in model.parameters()),
        gflops=counter.get_total_flops() / 1e9,
        embedding_size=spec.embedding_size,
        source=spec.source,
    )


def list_backbones(extra: list[str] | None = None) -> list[BackboneInfo]:
    """Info for every registered backbone, plus any `timm/<name>` asked for."""
    return [backbone_info(name) for name in BACKBONES.names() + list(extra or [])]
