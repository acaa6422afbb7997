"""The real step time of a planned run, measured on this machine before it starts: a few optimizer steps on
random batches of the run's shape, after warm-up, then the weights, optimizer, scaler and RNG put back."""

from __future__ import annotations

import copy
import math
import time

import torch
from torch import nn

from facecli.data.transforms import Preprocessing
from facecli.runtime import Runtime
from facecli.training.precision import Precision
from facecli.training.step import train_step

WARMUP_STEPS = 2  # the first steps pay for allocation and kernel choice; one, when it alone takes MEASURE_SECONDS
MEASURED_STEPS, MEASURE_SECONDS = 8, 3.0  # whichever comes first (at least 1 step)


def seconds_per_step(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    precision: Precision,
    preprocessing: Preprocessing,
    labels: torch.Tensor,
    side: int,
    give_up_above: float = math.inf,
) -> float:
    """Median seconds of one optimizer step on uint8 batches of `len(labels)` images of `side` pixels. A first
    step slower than `give_up_above` is returned as it is: an upper bound, for a caller that only needs to know
    the configuration is too slow (iresnet18 at 96 px takes ~7 s a step on 2 CPU cores)."""
    runtime: Runtime = precision.runtime
    saved = copy.deepcopy(net.state_dict()), copy.deepcopy(optimizer.state_dict()), precision.state_dict()
    rng = torch.random.get_rng_state()
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (len(labels), 3, side, side), dtype=torch.uint8, generator=generator)
    warmed: list[float] = []
    times: list[float] = []
    try:
        while len(times) < MEASURED_STEPS and sum(times) <= MEASURE_SECONDS:
            start = time.perf_counter()
            loss = train_step(net, preprocessing.normalize(runtime.batch(images)), labels, optimizer, precision)
            float(loss)  # wait for the device
            took = time.perf_counter() - start
            if not warmed and took > give_up_above:
                return took
            warming = len(warmed) < WARMUP_STEPS and not (warmed and warmed[-1] > MEASURE_SECONDS)
            (warmed if warming else times).append(took)
    finally:
        net.load_state_dict(saved[0])
        optimizer.load_state_dict(saved[1])
        precision.load_state_dict(saved[2])
        torch.random.set_rng_state(rng)
    return sorted(times)[len(times) // 2]


def probe_labels(batch_size: int, k: int | None, num_classes: int) -> torch.Tensor:
    """Labels of one batch as the sampler lays it out: P identities x K images, or one image each."""
    if k:
        return torch.arange(batch_size // k).repeat_interleave(k) % num_classes
    return torch.arange(batch_size) % num_classes
