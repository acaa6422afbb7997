"""Decoded images (uint8 RGB) to the normalised float batch a model expects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from PIL import Image

LETTERBOX_FILL = (128, 128, 128)


def letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize keeping the aspect ratio (PIL bicubic) and pad with grey, as FaceNet ports do."""
    height, width = size
    ih, iw = image.shape[:2]
    if (ih, iw) == (height, width):
        return image  # what PIL's resize to the same size and a paste onto the whole canvas give
    scale = min(width / iw, height / ih)
    nw, nh = int(iw * scale), int(ih * scale)
    resized = Image.fromarray(image).resize((nw, nh), Image.BICUBIC)
    canvas = Image.new("RGB", (width, height), LETTERBOX_FILL)
    canvas.paste(resized, ((width - nw) // 2, (height - nh) // 2))
    return np.asarray(canvas)


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Plain resize to (height, width): area filter when shrinking, bilinear when growing."""
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    shrinking = image.shape[0] > height or image.shape[1] > width
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def to_pixels(
    image: np.ndarray, size: tuple[int, int], channel_order: str = "RGB", mode: str = "resize"
) -> torch.Tensor:
    """One uint8 RGB HxWx3 image resized (or letterboxed) to a uint8 (3, H, W) tensor in the model's channel order."""
    image = letterbox(image, size) if mode == "letterbox" else resize(image, size)
    if channel_order == "BGR":
        image = image[..., ::-1]
    return torch.from_numpy(np.require(image, requirements=["C", "W"])).permute(2, 0, 1)  # a read-only image copied


def normalize(pixels: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (N, 3, H, W) or (3, H, W) pixels to floats: (x / 255 - mean) / std, on the pixels' device."""
    shape = (3, 1, 1) if pixels.ndim == 3 else (1, 3, 1, 1)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=pixels.device).view(shape)
    std_t = torch.tensor(std, dtype=torch.float32, device=pixels.device).view(shape)
    return (pixels.float().div_(255.0) - mean_t) / std_t


@dataclass(frozen=True)
class Preprocessing:
    """How a model wants its input: size, normalisation, channel order and resize mode."""

    size: tuple[int, int]
    mean: Sequence[float]
    std: Sequence[float]
    channel_order: str = "RGB"
    mode: str = "resize"

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        """One decoded uint8 RGB image to the normalised (3, H, W) tensor."""
        return self.normalize(self.pixels(image))

    def pixels(self, image: np.ndarray) -> torch.Tensor:
        """The image at the model's size and channel order, still uint8 (3, H, W): what training's loader
        workers send, a quarter of the bytes of floats; the batch is normalised where the model runs."""
        return to_pixels(image, self.size, self.channel_order, self.mode)

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 pixels (one image or a batch) to the model's normalised floats."""
        return normalize(pixels, self.mean, self.std)

    def batch(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """Decoded uint8 RGB images (any size) to one normalised (N, 3, H, W) batch."""
        return self.normalize(torch.stack([self.pixels(image) for image in images]))

    def blank(self) -> torch.Tensor:
        """Zero pixels of the input's shape (the stand-in for an image that could not be read)."""
        return torch.zeros(3, *self.size, dtype=torch.uint8)
