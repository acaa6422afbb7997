"""ArcFace's IResNet trunks (pre-activation basic blocks with PReLU), 18 to 100 layers."""

from __future__ import annotations

import torch
from torch import nn

from facecli.models.spec import register_backbone

DEPTHS = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
}


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)


class IBasicBlock(nn.Module):
    """BN-conv-BN-PReLU-conv-BN with an identity (or 1x1 projected) shortcut."""

    def __init__(self, in_ch: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch, eps=1e-05)
        self.conv1 = conv3x3(in_ch, planes)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-05)
        self.prelu = nn.PReLU(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-05)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity


class IResNet(nn.Module):
    """The IResNet trunk up to layer4 (512 channels, stride 16); the BN-dropout-FC-BN neck is separate."""

    def __init__(self, layers: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-05)
        self.prelu = nn.PReLU(64)
        self.in_ch = 64
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1])
        self.layer3 = self._make_layer(256, layers[2])
        self.layer4 = self._make_layer(512, layers[3])
        # Variance-preserving convolutions and residual branches that start at zero, so a fresh model is
        # numerically sane in eval mode (ArcFace's N(0, 0.1) init overflows iresnet50 before any training).
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, IBasicBlock):
                nn.init.zeros_(m.bn3.weight)

    def _make_layer(self, planes: int, blocks: int) -> nn.Sequential:
        downsample = nn.Sequential(
            nn.Conv2d(self.in_ch, planes, 1, stride=2, bias=False), nn.BatchNorm2d(planes, eps=1e-05)
        )
        layers = [IBasicBlock(self.in_ch, planes, 2, downsample)]
        self.in_ch = planes
        layers += [IBasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def _register(name: str, layers: tuple[int, int, int, int]) -> None:
    register_backbone(
        name,
        input_size=112,
        min_size=16,
        neck="flatten",
        embedding_size=512,
        dropout=0.0,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        resize="resize",
        source=f"ArcFace / insightface ({name})",
    )(lambda: IResNet(layers))


for _name, _layers in DEPTHS.items():
    _register(_name, _layers)
