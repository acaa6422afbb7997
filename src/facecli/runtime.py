"""Device and precision: resolved once from the options, printed in one line, passed around."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import nn

from facecli.errors import FaceCliError, unknown_choice

Precision = Literal["auto", "fp32", "fp16", "bf16"]
PRECISIONS = get_args(Precision)
AUTOCAST_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Runtime:
    """Where and how models run: device, precision, memory format and compilation."""

    device: torch.device
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"
    channels_last: bool = False
    compile: bool = False

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """Autocast context for the forward pass; a no-op in fp32."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=AUTOCAST_DTYPES[self.precision])

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """A GradScaler for fp16 training; bf16 and fp32 need none."""
        if self.precision != "fp16":
            return None
        return torch.amp.GradScaler(self.device.type)

    def prepare(self, model: nn.Module) -> nn.Module:
        """Move a model to the device and memory format, compiling it when asked."""
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if self.compile:
            model = torch.compile(model)
        return model

    def batch(self, images: torch.Tensor) -> torch.Tensor:
        """Move an input batch to the device in the model's memory format."""
        images = images.to(self.device, non_blocking=True)
        if self.channels_last and images.ndim == 4:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def describe(self) -> str:
        """One line for the start of every command."""
        name = str(self.device)
        if self.device.type == "cuda":
            name += f" ({torch.cuda.get_device_name(self.device)})"
        flags = [f for f, on in (("channels_last", self.channels_last), ("compiled", self.compile)) if on]
        return f"runtime: {name}, {self.precision}" + "".join(f", {f}" for f in flags)


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise unknown_choice("device", device, ["auto", "cpu", "cuda", "cuda:N", "mps"]) from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise FaceCliError(f"device '{device}' asked for, but CUDA is not available here; use --device cpu")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise FaceCliError(
                f"device '{device}' asked for, but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    elif resolved.type == "mps" and not torch.backends.mps.is_available():
        raise FaceCliError(f"device '{device}' asked for, but MPS is not available here; use --device cpu")
    elif resolved.type not in ("cpu", "cuda", "mps"):
        raise unknown_choice("device", device, ["auto", "cpu", "cuda", "cuda:N", "mps"])
    return resolved


def _resolve_precision(precision: str, device: torch.device) -> Literal["fp32", "fp16", "bf16"]:
    if precision not in PRECISIONS:
        raise unknown_choice("precision", precision, PRECISIONS)
    if precision == "auto":
        # CPU autocast is slower than fp32 on most CPUs, so auto keeps fp32 there.
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "fp16" if device.type == "mps" else "fp32"
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise FaceCliError("precision 'bf16' asked for, but this GPU does not support it; use fp16")
    return precision  # type: ignore[return-value]


def resolve_runtime(
    device: str = "auto", precision: str = "auto", channels_last: bool = False, compile: bool = False
) -> Runtime:
    """Resolve the user's device/precision options into one Runtime."""
    resolved = _resolve_device(device)
    return Runtime(
        device=resolved,
        precision=_resolve_precision(precision, resolved),
        channels_last=channels_last,
        compile=compile,
    )
