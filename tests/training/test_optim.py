"""Optimizers: fused where the device has it, the same steps as PyTorch's per-tensor loop, resumable from either."""

import copy

import pytest
import torch
from torch import nn

from facecli.training.optim import build_optimizer, load_optimizer_state


def _net(device: str = "cpu") -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3)).to(device)


def _train(net: nn.Module, optimizer: torch.optim.Optimizer, steps: int, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        optimizer.zero_grad()
        net(torch.randn(8, 6, generator=generator)).pow(2).mean().backward()
        optimizer.step()


def _unfused(net: nn.Module, name: str) -> torch.optim.Optimizer:
    """The same groups as build_optimizer, on PyTorch's default (per-tensor) implementation."""
    optimizer = build_optimizer(net, name, 0.01, 5e-4)
    for group in optimizer.param_groups:
        group["fused"] = None
    return optimizer


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_cpu_steps_are_fused_and_match_the_per_tensor_loop(name):
    fused_net, plain_net = _net(), _net()
    fused = build_optimizer(fused_net, name, 0.01, 5e-4)
    assert all(group["fused"] for group in fused.param_groups)
    _train(fused_net, fused, 5)
    _train(plain_net, _unfused(plain_net, name), 5)
    for a, b in zip(fused_net.parameters(), plain_net.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert not torch.equal(fused_net[0].weight, _net()[0].weight)  # it did learn


def test_devices_without_a_fused_step_use_the_default():
    optimizer = build_optimizer(_net("meta"), "adamw", 0.01, 5e-4)
    assert not any(group["fused"] for group in optimizer.param_groups)


def test_a_state_saved_by_the_per_tensor_loop_resumes_fused_on_the_same_path():
    before, after = _net(), _net()
    _train(before, old := _unfused(before, "adamw"), 3)
    after.load_state_dict(before.state_dict())
    resumed = build_optimizer(after, "adamw", 0.01, 5e-4)
    load_optimizer_state(resumed, copy.deepcopy(old.state_dict()))  # as read back from a file
    assert all(group["fused"] for group in resumed.param_groups)  # torch alone would restore the saved None
    _train(before, old, 4, seed=2)
    _train(after, resumed, 4, seed=2)
    for a, b in zip(before.parameters(), after.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def _scaled_step(net: nn.Module, optimizer: torch.optim.Optimizer, scaler, overflow: bool) -> None:
    optimizer.zero_grad()
    scaler.scale(net(torch.randn(8, 6, generator=torch.Generator().manual_seed(3))).pow(2).mean()).backward()
    if overflow:
        net[0].weight.grad[0, 0] = float("inf")
    scaler.step(optimizer)
    scaler.update()


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_an_fp16_overflow_step_leaves_no_trace(name):
    """fp16 steps go through a GradScaler, which skips a step whose gradients overflowed: an overflow and then
    a good step must equal the good step alone (fused SGD fails this: it advances its momentum regardless)."""
    skipped, alone = _net(), _net()
    optimizer = build_optimizer(skipped, name, 0.01, 5e-4, scaled=True)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    _scaled_step(skipped, optimizer, scaler, overflow=True)
    assert scaler.get_scale() == 512.0  # seen and skipped
    _scaled_step(skipped, optimizer, scaler, overflow=False)
    reference = torch.amp.GradScaler("cpu", init_scale=512.0)
    _scaled_step(alone, build_optimizer(alone, name, 0.01, 5e-4, scaled=True), reference, overflow=False)
    for a, b in zip(skipped.parameters(), alone.parameters(), strict=True):
        assert torch.isfinite(a).all() and torch.allclose(a, b, atol=1e-7)
