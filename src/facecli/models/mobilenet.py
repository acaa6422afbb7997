"""MobileNetV1 trunk as FaceNet ports use it (depthwise-separable blocks, ReLU6, 1024-d features)."""

from __future__ import annotations

import torch
from torch import nn

from facecli.models.spec import FACENET_STYLE, register_backbone


def conv_bn(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    """3x3 convolution, batch norm, ReLU6."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU6())


def conv_dw(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    """Depthwise 3x3 then pointwise 1x1, each with batch norm and ReLU6."""
    return nn.Sequential(
        nn.Conv2d(in_ch, in_ch, 3, stride, 1, groups=in_ch, bias=False),
        nn.BatchNorm2d(in_ch),
        nn.ReLU6(),
        nn.Conv2d(in_ch, out_ch, 1, 1, 0, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU6(),
    )


class MobileNetV1(nn.Module):
    """Three stages of MobileNetV1 ending in a 1024-channel map (stride 32)."""

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(
            conv_bn(3, 32, 2),
            conv_dw(32, 64, 1),
            conv_dw(64, 128, 2),
            conv_dw(128, 128, 1),
            conv_dw(128, 256, 2),
            conv_dw(256, 256, 1),
        )
        self.stage2 = nn.Sequential(conv_dw(256, 512, 2), *[conv_dw(512, 512, 1) for _ in range(5)])
        self.stage3 = nn.Sequential(conv_dw(512, 1024, 2), conv_dw(1024, 1024, 1))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # fan-in keeps activations at unit scale through the depthwise layers (fan-out shrinks them ~4x each)
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stage3(self.stage2(self.stage1(x)))


@register_backbone("mobilenet", min_size=32, source="FaceNet ports (MobileNetV1)", **FACENET_STYLE)
def mobilenet() -> nn.Module:
    """MobileNetV1 trunk."""
    return MobileNetV1()
