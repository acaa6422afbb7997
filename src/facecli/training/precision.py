"""Precision as an object: the plain one autocasts where the runtime asks and calls the plain backward and
step; the fp16 one puts a GradScaler around them. The training step never branches on the precision."""

from __future__ import annotations

import contextlib

import torch

from facecli.runtime import Runtime


class Precision:
    """fp32 and bf16: no scaling; autocast only where the runtime's precision asks for it."""

    scales = False  # whether steps go through a gradient scaler (which may skip them)

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def forward_context(self) -> contextlib.AbstractContextManager[None]:
        return self.runtime.autocast()

    def backward(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Gradients of `loss`, unscaled (ready to clip)."""
        loss.backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        optimizer.step()

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Nothing to restore."""


class ScaledPrecision(Precision):
    """fp16: the loss scaled before backward, gradients unscaled before clipping, overflowing steps skipped."""

    scales = True

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.scaler = torch.amp.GradScaler(runtime.device.type)

    def backward(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict:
        return self.scaler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        if state:  # a state saved by an fp32/bf16 run of older versions has none
            self.scaler.load_state_dict(state)


def precision_for(runtime: Runtime) -> Precision:
    """The training precision object for the runtime's resolved precision."""
    return ScaledPrecision(runtime) if runtime.precision == "fp16" else Precision(runtime)
