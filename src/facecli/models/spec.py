"""What the registry knows about a backbone: how to build its trunk and how it expects input."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from torch import nn

from facecli.registry import BACKBONES

Neck = Literal["pool", "flatten"]
Resize = Literal["resize", "letterbox"]


@dataclass(frozen=True)
class BackboneSpec:
    """A registered backbone: trunk builder, native input, neck kind and default preprocessing."""

    name: str
    build: Callable[[], nn.Module]
    input_size: int
    min_size: int
    neck: Neck
    embedding_size: int
    dropout: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: Resize
    source: str


# How FaceNet ports feed their backbones: 160x160, RGB/255 with no mean/std, grey letterbox, pool neck.
FACENET_STYLE: dict[str, object] = {
    "input_size": 160,
    "neck": "pool",
    "embedding_size": 128,
    "dropout": 0.5,
    "mean": (0.0, 0.0, 0.0),
    "std": (1.0, 1.0, 1.0),
    "resize": "letterbox",
}


def register_backbone(name: str, **spec: object) -> Callable[[Callable[[], nn.Module]], Callable[[], nn.Module]]:
    """Decorator registering a zero-argument trunk builder under `name` with its spec."""

    def add(build: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
        BACKBONES.register(name, BackboneSpec(name=name, build=build, **spec))  # type: ignore[arg-type]
        return build

    return add
