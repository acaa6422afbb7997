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
    # From scratch the input is centred: VGG16 has no BatchNorm, and RGB/255 (all positive, as siamese repos
    # feed their ImageNet-pretrained copies) left it below raw pixels on pose64 (0.54 against 0.58) where
    # (RGB/255 - 0.5) / 0.5 reached 0.78 (RESULTS.md "VGG16 from scratch"). Imported weights keep RGB/255.
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    resize="resize",
    source="siamese networks (torchvision VGG16 features)",
)
def vgg16() -> nn.Module:
    """VGG16 trunk."""
    return VGG16Trunk()
