"""Training throughput: the full pipeline (JPEG files -> DataLoader workers -> augmentation -> step) against
the model-only ceiling (the same step on a batch already in memory), per backbone at its native size.

The ratio pipeline / ceiling says how busy the data loader keeps the model (target: >= 0.9 on CPU).
On CUDA it adds fp16 and bf16 autocast with channels_last. Usage:
python benchmarks/train_throughput.py [--backbones mobilenet iresnet18] [--steps 8] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

import facecli.losses  # noqa: F401
from facecli.data.samplers import TrainBatchSampler
from facecli.data.synth import synth
from facecli.data.training_set import TrainImages, read_training_set
from facecli.engine.embed import default_workers
from facecli.engine.optim import build_optimizer
from facecli.engine.train import TrainStep, _loader, _step
from facecli.models import create_model
from facecli.registry import BACKBONES, LOSSES
from facecli.runtime import resolve_runtime

DEFAULT_BACKBONES = ["mobilenet", "inception_resnetv1", "iresnet18", "vgg16"]


def setups(device: str) -> list[tuple[str, str, bool]]:
    """(label, precision, channels_last) to measure on this device."""
    if device == "cpu":
        return [("fp32", "fp32", False)]
    return [("fp32", "fp32", False), ("fp16 + channels_last", "fp16", True), ("bf16 + channels_last", "bf16", True)]


def measure(name: str, data_dir: Path, precision: str, channels_last: bool, device: str, steps: int, batch: int):  # noqa: ANN201
    runtime = resolve_runtime(device, precision, channels_last)
    data = read_training_set(data_dir)
    model = create_model(name, num_classes=data.num_classes)
    loss = LOSSES.get("arcface")(model.config.embedding_size, data.num_classes)
    net = TrainStep(model, loss).to(runtime.device)
    if channels_last:
        net.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(net, "sgd", 0.01, 5e-4, 0.9)
    scaler = runtime.grad_scaler()
    sync = torch.cuda.synchronize if runtime.device.type == "cuda" else (lambda: None)

    images = torch.randn(batch, 3, *model.config.input_size)
    labels = torch.randint(0, data.num_classes, (batch,))
    for _ in range(2):
        _step(net, images, labels, optimizer, scaler, runtime, None)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        _step(net, images, labels, optimizer, scaler, runtime, None)
    sync()
    ceiling = steps * batch / (time.perf_counter() - start)

    sampler = TrainBatchSampler(data.labels, batch, "random", seed=0)
    loader = _loader(TrainImages(data, model.config, "light"), sampler, default_workers(), runtime.device)
    batches = iter(loader)
    for _ in range(2):
        x, y, _ = next(batches)
        _step(net, x, y, optimizer, scaler, runtime, None)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        x, y, _ = next(batches)
        _step(net, x, y, optimizer, scaler, runtime, None)
    sync()
    pipeline = steps * batch / (time.perf_counter() - start)
    return pipeline, ceiling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backbones", nargs="+", default=DEFAULT_BACKBONES)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    table = Table(
        title=f"training images/s, batch {args.batch_size}, {args.device}, loader workers {default_workers()}"
    )
    for column in ("backbone", "input", "precision", "pipeline img/s", "model-only img/s", "busy"):
        table.add_column(column, justify="left" if column in ("backbone", "precision") else "right")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.backbones:
            size = BACKBONES.get(name).input_size
            data_dir = Path(tmp) / f"faces{size}"
            if not data_dir.exists():
                images = args.batch_size * (args.steps + 3) // 32 + 1
                synth(data_dir, identities=32, images=images, size=size, seed=0)
            for label, precision, channels_last in setups(args.device):
                pipeline, ceiling = measure(
                    name, data_dir, precision, channels_last, args.device, args.steps, args.batch_size
                )
                table.add_row(
                    name, f"{size}px", label, f"{pipeline:.1f}", f"{ceiling:.1f}", f"{pipeline / ceiling:.0%}"
                )
    Console().print(table)


if __name__ == "__main__":
    main()
