"""Eval embedding throughput against the model-only ceiling (forward passes on tensors already in memory).

Prints, per backbone at its native size: images/s of the model alone, images/s of the full eval
embedding path (read JPEG, decode, preprocess in DataLoader workers, forward), and their ratio.
Usage: python benchmarks/eval_throughput.py [--images 512] [--backbones mobilenet iresnet18]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from facecli.data.synth import synth
from facecli.data.workers import default_workers
from facecli.embed import TorchEmbedder, embed_images
from facecli.models import create_model
from facecli.registry import BACKBONES
from facecli.runtime import resolve_runtime


def model_only_rate(model: torch.nn.Module, batch: torch.Tensor, images: int, runtime) -> float:  # noqa: ANN001
    net = runtime.prepare(model.eval())
    x = runtime.batch(batch)
    with torch.inference_mode(), runtime.autocast():
        net(x)  # warm-up
        start = time.perf_counter()
        for _ in range(images // len(batch)):
            net(x)
        if runtime.device.type == "cuda":
            torch.cuda.synchronize()
    return (images // len(batch)) * len(batch) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--backbones", nargs="+", default=["mobilenet", "iresnet18"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()
    runtime = resolve_runtime(args.device, args.precision)
    table = Table(
        title=f"eval throughput, {runtime.describe()}, batch {args.batch_size}, {default_workers()} loader workers"
    )
    for column in ("backbone", "input", "model only (img/s)", "eval path (img/s)", "eval / model"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.backbones:
            size = BACKBONES.get(name).input_size
            root = Path(tmp) / f"{name}_{size}"
            synth(root, identities=args.images // 16, images=16, size=size, seed=0)
            files = sorted(root.rglob("*.jpg"))
            model = create_model(name)
            from facecli.data.images import read_image

            batch = model.preprocess([read_image(f) for f in files[: args.batch_size]])
            ceiling = model_only_rate(model, batch, len(files), runtime)
            embedder = TorchEmbedder(model, runtime)
            embed_images(embedder, files[: args.batch_size], args.batch_size)  # warm-up
            start = time.perf_counter()
            embed_images(embedder, files, args.batch_size)
            rate = len(files) / (time.perf_counter() - start)
            table.add_row(name, f"{size}", f"{ceiling:.1f}", f"{rate:.1f}", f"{rate / ceiling:.0%}")
    Console().print(table)


if __name__ == "__main__":
    main()
