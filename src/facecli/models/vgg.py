"""The VGG16 convolutional trunk that siamese networks use (torchvision's `features` layout)."""

from __future__ import annotations

import torch
from torch import nn

from facecli.models.spec import register_backbone


class VGG16Trunk(nn.Module):
    """torchvision VGG16 `features` (13 convolutions, 5 max-pools), 512 channels at stride 32."""

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import vgg16 as tv_vgg16  # imported here: torchvision takes seconds to import

        self.features = tv_vgg16(weights=None).features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


@register_backbone(
    "vgg16",
    input_size=105,
    min_size=32,
    neck="pool",
    embedding_size=128,
    dropout=0.0,
    mean=(0.0, 0.0, 0.0),
    std=(1.0, 1.0, 1.0),
    resize="resize",
    source="siamese networks (torchvision VGG16 features)",
)
def vgg16() -> nn.Module:
    """VGG16 trunk."""
    return VGG16Trunk()
