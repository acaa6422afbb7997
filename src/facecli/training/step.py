"""One training step: the model and its loss as one module (what DDP wraps), and forward, backward and the
optimizer step without reading anything back to the host."""

from __future__ import annotations

import torch
from torch import nn

from facecli.models import FaceEmbedder
from facecli.training.precision import Precision


class TrainStep(nn.Module):
    """The embedding model and its loss (with any head) as one module, so DDP syncs both.

    Losses get the embedding before L2 normalisation, as the FaceNet ports feed their softmax head;
    the margin and metric losses normalise it themselves.
    """

    def __init__(self, model: FaceEmbedder, loss: nn.Module, compile: bool = False) -> None:
        super().__init__()
        self.model, self.loss = model, loss
        self.features = torch.compile(model.features) if compile else model.features

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss(self.features(images), labels)


def train_step(
    net: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    precision: Precision,
    clip_grad: float | None = None,
) -> torch.Tensor:
    """One optimizer step; returns the loss as a tensor on the device, not read back (no host sync here).

    A non-finite loss is found when the loop reads the losses back, and the run stops there without saving;
    with fp16 the gradient scaler skips such steps itself."""
    runtime = precision.runtime
    optimizer.zero_grad(set_to_none=True)
    with precision.forward_context():
        loss = net(runtime.batch(images), labels.to(runtime.device, non_blocking=True))
    precision.backward(loss, optimizer)
    if clip_grad:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, clip_grad)
    precision.step(optimizer)
    return loss.detach()
