"""Eval embedding throughput against the model-only ceiling of the same backend and batch.

Per backbone at its native size, through the backend `facecli eval` picks by default (ONNX Runtime on a
CPU): images/s of the model alone on a batch already in memory, images/s of the full eval embedding path
(read JPEG, decode, resize in DataLoader workers, normalise, forward), and their ratio. The batch is the
backend's default unless --batch-size is given.
Usage: python benchmarks/eval_throughput.py [--images 512] [--backbones mobilenet iresnet18] [--backend auto]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from facecli.checkpoint import save_model
from facecli.data.images import read_image
from facecli.data.synth import synth
from facecli.data.workers import default_workers
from facecli.embed import embed_images
from facecli.embed.auto_backend import open_model
from facecli.models import create_model
from facecli.registry import BACKBONES
from facecli.runtime import resolve_runtime


def model_only_rate(embedder, batch: torch.Tensor, images: int) -> float:  # noqa: ANN001
    embedder.embed(batch, False)  # warm-up
    start = time.perf_counter()
    for _ in range(images // len(batch)):
        embedder.embed(batch, False)
    return (images // len(batch)) * len(batch) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--backbones", nargs="+", default=["mobilenet", "iresnet18"])
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()
    runtime = resolve_runtime(args.device, args.precision)
    table = Table(title=f"eval throughput, {runtime.device}, {default_workers()} loader worker(s)")
    for column in ("backbone", "input", "backend", "batch", "model only (img/s)", "eval path (img/s)", "eval / model"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("FACECLI_CACHE", str(Path(tmp) / "cache"))
        for name in args.backbones:
            size = BACKBONES.get(name).input_size
            root = Path(tmp) / f"{name}_{size}"
            synth(root, identities=args.images // 16, images=16, size=size, seed=0)
            files = sorted(root.rglob("*.jpg"))
            checkpoint = Path(tmp) / f"{name}.safetensors"
            save_model(create_model(name).eval(), checkpoint)
            embedder = open_model(checkpoint, args.backend, runtime)
            batch_size = args.batch_size or embedder.preferred_batch
            batch = embedder.config.preprocessing.batch([read_image(f) for f in files[:batch_size]])
            ceiling = model_only_rate(embedder, batch, len(files))
            embed_images(embedder, files[:batch_size], batch_size)  # warm-up (starts the workers once)
            start = time.perf_counter()
            embed_images(embedder, files, batch_size)
            rate = len(files) / (time.perf_counter() - start)
            backend = embedder.describe().removeprefix("runtime: ")
            table.add_row(name, f"{size}", backend, str(batch_size), f"{ceiling:.1f}", f"{rate:.1f}",
                          f"{rate / ceiling:.0%}")  # fmt: skip
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
