"""Precision objects: the plain one is a plain backward and step; fp16's scales, unscales and skips overflows."""

import pytest
import torch

from facecli.runtime import resolve_runtime
from facecli.training.precision import Precision, ScaledPrecision, precision_for
from facecli.training.step import train_step


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(self.linear(images), labels)


@pytest.mark.parametrize(("precision", "kind"), [("fp32", Precision), ("bf16", Precision), ("fp16", ScaledPrecision)])
def test_only_fp16_scales(precision, kind):
    chosen = precision_for(resolve_runtime("cpu", precision))
    assert type(chosen) is kind and chosen.scales == (precision == "fp16")
    assert (chosen.state_dict() != {}) == chosen.scales


def test_the_plain_step_is_backward_and_step():
    torch.manual_seed(0)
    images, labels = torch.randn(8, 4), torch.randint(0, 2, (8,))
    net, reference = _Net(), _Net()
    reference.load_state_dict(net.state_dict())
    plain = precision_for(resolve_runtime("cpu"))
    loss = train_step(net, images, labels, torch.optim.SGD(net.parameters(), lr=0.1), plain)
    optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)
    expected = reference(images, labels)
    expected.backward()
    optimizer.step()
    assert torch.equal(loss, expected.detach())
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), reference.parameters(), strict=True))


def test_fp16_skips_a_step_whose_gradients_overflow_and_lowers_the_scale():
    torch.manual_seed(0)
    net, precision = _Net(), precision_for(resolve_runtime("cpu", "fp16"))
    before = [p.detach().clone() for p in net.parameters()]
    scale = precision.scaler.get_scale()
    images = torch.full((8, 4), float("inf"))
    train_step(net, images, torch.zeros(8, dtype=torch.long), torch.optim.SGD(net.parameters(), lr=0.1), precision)
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), before, strict=True))
    assert precision.scaler.get_scale() < scale
