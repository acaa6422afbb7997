"""Training throughput: the real data pipeline against the model-only ceiling, per backbone.

Model-only is forward + backward + optimizer step on a batch already in memory; the pipeline is the
trainer's own loader (JPEG decode, light augmentation, resize, worker processes) feeding the same
step. busy = pipeline / model-only: how much of the time the model is kept working.
Usage: python benchmarks/train_throughput.py [--backbones mobilenet timm/resnet10t] [--device cuda]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from facecli.data.batch_plan import plan_batches
from facecli.data.samplers import TrainBatchSampler
from facecli.data.synth import synth
from facecli.data.training_set import TrainImages, read_training_set, train_loader
from facecli.data.workers import default_workers
from facecli.losses import margin  # noqa: F401  (registers the losses)
from facecli.models import create_model
from facecli.registry import BACKBONES, LOSSES
from facecli.runtime import Runtime, resolve_runtime
from facecli.training.precision import precision_for
from facecli.training.step import TrainStep, train_step


def setups(device: str) -> list[tuple[str, Runtime]]:
    """fp32 everywhere; on a GPU also fp16 and bf16 autocast with channels_last."""
    runs = [("fp32", resolve_runtime(device, "fp32"))]
    if resolve_runtime(device, "fp32").device.type == "cuda":
        runs += [(f"{p} channels_last", resolve_runtime(device, p, channels_last=True)) for p in ("fp16", "bf16")]
    return runs


def images_per_second(step, batches, steps: int, batch_size: int, sync) -> float:  # noqa: ANN001
    """Images/s over `steps` steps after three warm-up steps."""
    for images, labels in itertools.islice(batches, 3):
        step(images, labels)
    sync()
    start = time.perf_counter()
    for images, labels in itertools.islice(batches, steps):
        step(images, labels)
    sync()
    return steps * batch_size / (time.perf_counter() - start)


def measure(name: str, data, runtime: Runtime, batch_size: int, steps: int, workers: int) -> tuple[float, float]:  # noqa: ANN001
    """(pipeline, model-only) images/s for one backbone and runtime."""
    torch.manual_seed(0)
    model = create_model(name)
    loss = LOSSES.get("arcface")(model.config.embedding_size, data.num_classes)
    net = runtime.prepare(TrainStep(model, loss))
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    precision = precision_for(runtime)
    sync = torch.cuda.synchronize if runtime.device.type == "cuda" else (lambda: None)

    def step(images: torch.Tensor, labels: torch.Tensor) -> None:  # the loader's uint8, normalised as train does
        train_step(net, model.config.preprocessing.normalize(runtime.batch(images)), labels, optimizer, precision)

    sampler = TrainBatchSampler(plan_batches(data.labels, batch_size, "random"), epochs=1)
    loader = train_loader(TrainImages(data, model.config.preprocessing, "light"), sampler, workers, runtime.device)
    batches = ((images, labels) for _ in itertools.count() for images, labels, *_ in loader)
    in_memory = itertools.repeat(next(batches))
    before = images_per_second(step, in_memory, steps, batch_size, sync)
    pipeline = images_per_second(step, batches, steps, batch_size, sync)
    # the ceiling is the better of a run before and one after the pipeline (CPU timings drift by ~10%)
    return pipeline, max(before, images_per_second(step, in_memory, steps, batch_size, sync))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=[*BACKBONES.names(), "timm/resnet10t"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    table = Table(title=f"training throughput, batch {args.batch_size}, {args.workers} loader worker(s)")
    for column in ("backbone", "input", "setup", "pipeline img/s", "model-only img/s", "busy"):
        table.add_column(column, justify="left" if column in ("backbone", "setup") else "right")
    with tempfile.TemporaryDirectory() as tmp:
        synth(Path(tmp) / "faces", identities=16, images=16, size=160, seed=0)
        data = read_training_set(Path(tmp) / "faces")
        for name in args.backbones:
            size = BACKBONES.get(name).input_size
            for setup, runtime in setups(args.device):
                pipeline, ceiling = measure(name, data, runtime, args.batch_size, args.steps, args.workers)
                table.add_row(
                    name, f"{size}px", setup, f"{pipeline:.1f}", f"{ceiling:.1f}", f"{pipeline / ceiling:.0%}"
                )
                Console().print(f"{name} {setup}: {pipeline:.1f} / {ceiling:.1f} img/s", highlight=False)
    Console().print(table)


if __name__ == "__main__":
    main()
