"""`timm/<name>`: any timm architecture, built from scratch, without its classifier."""

from __future__ import annotations

from torch import nn

from facecli.errors import FaceCliError, did_you_mean
from facecli.models.spec import BackboneSpec
from facecli.registry import BACKBONES

PREFIX = "timm/"


def resolve_timm(name: str) -> BackboneSpec | None:
    """A spec for `timm/<arch>` names; None for other names."""
    if not name.startswith(PREFIX):
        return None
    import timm

    arch = name[len(PREFIX) :]
    if not timm.is_model(arch):
        raise FaceCliError(f"unknown timm architecture '{arch}'{did_you_mean(arch, timm.list_models())}")
    cfg = timm.get_pretrained_cfg(arch)
    size = cfg.input_size[-1] if cfg is not None else 224
    mean = tuple(cfg.mean) if cfg is not None else (0.485, 0.456, 0.406)
    std = tuple(cfg.std) if cfg is not None else (0.229, 0.224, 0.225)

    def build() -> nn.Module:
        return timm.create_model(arch, pretrained=False, num_classes=0)

    return BackboneSpec(
        name=name,
        build=build,
        input_size=size,
        min_size=32,
        neck="pool",
        embedding_size=512,
        dropout=0.0,
        mean=mean,  # type: ignore[arg-type]
        std=std,  # type: ignore[arg-type]
        resize="resize",
        source=f"timm ({arch})",
    )


BACKBONES.add_resolver(resolve_timm)
