"""MTCNN (P-Net, R-Net, O-Net): face boxes and five landmarks, with the public pretrained weights.

The layer names match the published state dicts, so they load as they are. P-Net runs on each
pyramid level; R-Net and O-Net run on all candidates of a photo as one batch each.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn
from torchvision.ops import nms

WEIGHTS = "mtcnn.safetensors"
VERSION = 2  # 2: the reference's steps (#22); caches of aligned crops are keyed by it
MEAN, SCALE = 127.5, 0.0078125


class PNet(nn.Module):
    """12x12 proposal network, fully convolutional: face probability and box offsets per 2-pixel step."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return F.softmax(self.conv4_1(x), dim=1)[:, 1], self.conv4_2(x)


class RNet(nn.Module):
    """24x24 refinement network."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).flatten(1)))  # the weights' (W, H, C) order
        return F.softmax(self.dense5_1(x), dim=1)[:, 1], self.dense5_2(x)


class ONet(nn.Module):
    """48x48 output network: probability, box offsets and five landmarks."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu5(self.dense5(self.prelu4(self.conv4(x)).permute(0, 3, 2, 1).flatten(1)))
        return F.softmax(self.dense6_1(x), dim=1)[:, 1], self.dense6_2(x), self.dense6_3(x)


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow each (x1, y1, x2, y2) box to a square about its centre."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    x1, y1 = boxes[:, 0] + (w - side) / 2, boxes[:, 1] + (h - side) / 2
    return torch.stack([x1, y1, x1 + side, y1 + side], dim=1)


def _regress(boxes: torch.Tensor, offsets: torch.Tensor, inclusive: bool) -> torch.Tensor:
    """Apply the networks' box offsets (fractions of the box size).

    The reference measures P-Net's boxes as x2 - x1 and R-Net's and O-Net's as inclusive pixel
    counts, x2 - x1 + 1 (the original MATLAB code's convention); both are kept to give its answers.
    """
    size = (boxes[:, 2:4] - boxes[:, 0:2] + (1.0 if inclusive else 0.0)).repeat(1, 2)
    return boxes + offsets * size


class MTCNN(nn.Module):
    """Detects faces in one RGB uint8 image: (N, 5) boxes with scores and (N, 5, 2) landmarks.

    Every step follows facenet-pytorch's `detect_face` (each pyramid level resized from the photo
    with area interpolation; NMS before regression in R-Net; crops cut on whole pixels from
    x1 - 1 and resampled with area interpolation; inclusive box sizes; "min" NMS last), so its boxes
    and landmarks match the reference's (tests/align/test_mtcnn_parity.py).
    """

    def __init__(
        self,
        min_face: int = 20,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        max_side: int = 1280,
    ) -> None:
        super().__init__()
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        self.min_face, self.thresholds, self.factor, self.max_side = min_face, thresholds, factor, max_side
        self.eval()

    @classmethod
    def pretrained(cls, **options: object) -> MTCNN:
        """The published weights shipped with facecli (see THIRD_PARTY_NOTICES.md)."""
        model = cls(**options)  # type: ignore[arg-type]
        with resources.as_file(resources.files("facecli.align") / WEIGHTS) as path:
            model.load_state_dict(load_file(str(path)))
        return model

    def _scales(self, h: int, w: int) -> list[float]:
        """The pyramid's scales: from 12 / min_face down by `factor` while the short side stays >= 12."""
        scale, short, scales = 12.0 / self.min_face, min(h, w) * 12.0 / self.min_face, []
        while short >= 12:
            scales.append(scale)
            scale, short = scale * self.factor, short * self.factor
        return scales

    def _proposals(self, image: torch.Tensor) -> torch.Tensor:
        """P-Net on every pyramid level: regressed candidate boxes (N, 5 with the score)."""
        h, w = image.shape[-2:]
        found = []
        for scale in self._scales(h, w):
            level = F.interpolate(image, size=(int(h * scale + 1), int(w * scale + 1)), mode="area")
            prob, offsets = self.pnet(level)
            prob, offsets = prob[0], offsets[0]
            ys, xs = torch.nonzero(prob >= self.thresholds[0], as_tuple=True)
            if not len(ys):
                continue
            origin = torch.stack([xs, ys], 1).to(image.dtype) * 2
            boxes = torch.cat([((origin + 1) / scale).floor(), ((origin + 12) / scale).floor()], 1)
            candidates = torch.cat([boxes, prob[ys, xs, None], offsets[:, ys, xs].T], 1)
            found.append(candidates[nms(boxes, candidates[:, 4], 0.5)])
        if not found:
            return image.new_zeros(0, 5)
        found = torch.cat(found)
        found = found[nms(found[:, :4], found[:, 4], 0.7)]
        return torch.cat([_regress(found[:, :4], found[:, 5:9], inclusive=False), found[:, 4:5]], 1)

    @staticmethod
    def _crops(image: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
        """Each box cut from the image on whole pixels (clipped to it) and resized to size x size.

        As the reference does: truncate, clip to [1, side], then take pixels x1 - 1 to x2 - 1.
        """
        h, w = image.shape[-2:]
        crops = []
        for x1, y1, x2, y2 in boxes[:, :4].trunc().long().tolist():
            x1, y1, x2, y2 = max(x1, 1), max(y1, 1), min(x2, w), min(y2, h)
            x1, y1 = min(x1, x2), min(y1, y2)  # a box wholly outside the image still gives one pixel
            crops.append(F.interpolate(image[..., y1 - 1 : y2, x1 - 1 : x2], size=(size, size), mode="area"))
        return torch.cat(crops)

    @torch.inference_mode()
    def forward(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = image.shape[:2]
        shrink = min(1.0, self.max_side / max(h, w))  # detect on a smaller copy of a large photo
        x = torch.tensor(image).permute(2, 0, 1)[None].float()
        if shrink < 1:
            x = F.interpolate(x, size=(round(h * shrink), round(w * shrink)), mode="area")
        x = (x - MEAN) * SCALE
        boxes = self._proposals(x)
        if len(boxes):
            boxes = _square(boxes[:, :4])
            prob, offsets = self.rnet(self._crops(x, boxes, 24))
            keep = prob > self.thresholds[1]
            boxes, prob, offsets = boxes[keep], prob[keep], offsets[keep]
            keep = nms(boxes, prob, 0.7)
            boxes = _square(_regress(boxes[keep], offsets[keep], inclusive=True))
        landmarks = x.new_zeros(0, 5, 2)
        if len(boxes):
            prob, offsets, points = self.onet(self._crops(x, boxes, 48))
            keep = prob > self.thresholds[2]
            boxes, prob, offsets, points = boxes[keep], prob[keep], offsets[keep], points[keep]
            size = boxes[:, 2:4] - boxes[:, 0:2] + 1
            landmarks = torch.stack([points[:, :5], points[:, 5:]], 2) * size[:, None] + boxes[:, None, :2] - 1
            boxes = _regress(boxes, offsets, inclusive=True)
            keep = _nms_min(boxes, prob, 0.7)
            boxes = torch.cat([boxes[keep], prob[keep, None]], 1)
            landmarks = landmarks[keep]
        order = torch.argsort(boxes[:, 4], descending=True) if len(boxes) else torch.zeros(0, dtype=torch.long)
        boxes, landmarks = boxes[order].numpy(), landmarks[order].numpy()
        boxes[:, :4] /= shrink
        return boxes.reshape(-1, 5), landmarks.reshape(-1, 5, 2) / shrink


def _nms_min(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """NMS with overlap measured over the smaller box (MTCNN's last stage): drops faces inside faces.

    Sizes are inclusive pixel counts (x2 - x1 + 1), as in the reference.
    """
    order = torch.argsort(scores, descending=True)
    area = (boxes[:, 2] - boxes[:, 0] + 1).clamp_min(0) * (boxes[:, 3] - boxes[:, 1] + 1).clamp_min(0)
    keep = []
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(int(i))
        lt = torch.maximum(boxes[i, :2], boxes[rest, :2])
        rb = torch.minimum(boxes[i, 2:4], boxes[rest, 2:4])
        inter = (rb - lt + 1).clamp_min(0).prod(1)
        order = rest[inter / torch.minimum(area[i], area[rest]).clamp_min(1e-9) <= threshold]
    return torch.tensor(keep, dtype=torch.long)
