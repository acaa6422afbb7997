"""The training loop against the model alone at small images: what the loop costs per step.

Model-only: forward, backward and optimizer step of the same model and loss on one batch already in
memory, in a plain loop. Loop: `facecli.train` itself (loader workers, augmentation, progress, logging,
scheduler, checkpoints) on synthetic 32 px faces; its rate is each epoch's images over its wall time,
the median over epochs 2 onwards (the loader workers keep decoded images from the first epoch on); the
first epoch's rate, which also starts the workers and reads every file, is shown beside it.
Usage: python benchmarks/step_overhead.py [--backbone timm/resnet10t]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from facecli.data.synth import synth
from facecli.data.workers import default_workers
from facecli.losses.options import build_loss, check_loss_options
from facecli.models import create_model, default_config
from facecli.runtime import resolve_runtime
from facecli.training import train
from facecli.training.optim import build_optimizer
from facecli.training.options import TrainOptions
from facecli.training.precision import Precision
from facecli.training.step import TrainStep, train_step


def model_only(backbone: str, size: int, batch: int, classes: int, steps: int) -> float:
    """Images/s of the bare step on one in-memory batch, after 3 warm-up steps."""
    torch.manual_seed(0)
    model = create_model(default_config(backbone, 128, size, 0.0, loss="arcface", num_classes=classes))
    loss = build_loss("arcface", 128, classes, check_loss_options("arcface", {}))
    runtime = resolve_runtime("cpu").for_model(model.config.backbone, training=True)
    net = runtime.prepare(TrainStep(model, loss))
    optimizer = build_optimizer(net, "adamw", 1e-3, 5e-4)
    precision = Precision(runtime)
    images, labels = torch.randn(batch, 3, size, size), torch.randint(0, classes, (batch,))
    for _ in range(3):
        train_step(net, images, labels, optimizer, precision)
    started = time.perf_counter()
    for _ in range(steps):
        train_step(net, images, labels, optimizer, precision)
    return steps * batch / (time.perf_counter() - started)


def loop_rates(
    data: Path, run: Path, backbone: str, size: int, batch: int, epochs: int, workers: int
) -> tuple[float, float]:
    """(first epoch, median of the later epochs) images/s of `facecli.train`."""
    options = TrainOptions(
        data=data, run_dir=run, backbone=backbone, img_size=size, embedding_size=128, loss="arcface",
        epochs=epochs, batch_size=batch, workers=workers, device="cpu", aug="light", lr=1e-3, warmup_epochs=0,
    )  # fmt: skip
    result = train(options)
    rates = [row["images_per_s"] for row in result.history]
    return rates[0], statistics.median(rates[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="timm/resnet10t")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--identities", type=int, default=64)
    parser.add_argument("--images", type=int, default=40, help="per identity")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--workers", type=int, default=default_workers())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        synth(Path(tmp) / "faces", identities=args.identities, images=args.images, size=args.size, seed=0)
        bare = model_only(args.backbone, args.size, args.batch_size, args.identities, 20)
        first, loop = loop_rates(Path(tmp) / "faces", Path(tmp) / "run", args.backbone, args.size, args.batch_size,
                         args.epochs, args.workers)  # fmt: skip
        bare = max(bare, model_only(args.backbone, args.size, args.batch_size, args.identities, 20))
    table = Table(title=f"{args.backbone} at {args.size} px, batch {args.batch_size}, {args.workers} loader worker(s)")
    for column in ("model-only img/s", "facecli train img/s", "loop / model-only", "first epoch img/s"):
        table.add_column(column, justify="right")
    table.add_row(f"{bare:.0f}", f"{loop:.0f}", f"{loop / bare:.0%}", f"{first:.0f}")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
