"""Device and precision: resolved once from the options, printed in one line, passed around."""

from __future__ import annotations

import contextlib
import dataclasses
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
    channels_last: bool | None = None  # None: chosen per backbone by `for_model` (auto)
    compile: bool = False

    def for_model(self, backbone: str, training: bool) -> Runtime:
        """The runtime with the memory format chosen where it was left to auto (see channels_last_faster)."""
        if self.channels_last is not None:
            return self
        return dataclasses.replace(self, channels_last=channels_last_faster(self.device, backbone, training))

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """Autocast context for the forward pass; a no-op in fp32."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=AUTOCAST_DTYPES[self.precision])

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
        if self.channels_last is None:
            flags.insert(0, "memory format auto")
        return f"runtime: {name}, {self.precision}" + "".join(f", {f}" for f in flags)


# Measured on the 2-core CPU machine (benchmarks/auto_choices.py, RESULTS.md), images/s contiguous ->
# channels_last. Inference was faster for every backbone (mobilenet 57 -> 92, iresnet50 10.2 -> 12.5,
# resnet10t at 32 px 1003 -> 1635). Training was faster only for mobilenet (31 -> 35) and iresnet18
# (3.7 -> 6.2), level for resnet10t at 32 px (270 -> 275) and slower for inception_resnetv1, iresnet50,
# vgg16 and resnet10t at 112 px (by 12-21%).
CHANNELS_LAST_FASTER_CPU_TRAINING = frozenset({"mobilenet", "iresnet18"})


def channels_last_faster(device: torch.device, backbone: str, training: bool) -> bool:
    """Whether channels_last runs this backbone faster here: on GPUs, where it feeds tensor cores, always;
    on CPUs as measured (see the table above)."""
    if device.type == "cuda":
        return True  # PyTorch's guidance for convolutional nets on tensor cores; no GPU figure in RESULTS.md yet
    if device.type != "cpu":
        return False
    return not training or backbone in CHANNELS_LAST_FASTER_CPU_TRAINING


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
    device: str = "auto", precision: str = "auto", channels_last: bool | None = None, compile: bool = False
) -> Runtime:
    """Resolve the user's device/precision options into one Runtime."""
    resolved = _resolve_device(device)
    return Runtime(
        device=resolved,
        precision=_resolve_precision(precision, resolved),
        channels_last=channels_last,
        compile=compile,
    )
