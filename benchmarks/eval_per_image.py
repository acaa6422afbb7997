"""Eval per image: facecli's embedding path against the FaceNet ports' loop, image for image, and what
each difference costs.

The same N synthetic 250x250 JPEGs (LFW's size), mobilenet at 160 px, contiguous fp32 PyTorch on the CPU
(the automatic backend is measured in eval_defaults.py), one loader worker. The ports' loop: a Dataset
that opens each image with PIL, letterboxes it (bicubic, grey padding), a DataLoader at batch 32. facecli:
`embed_images` with the model's own preprocessing, then variants that change one thing each.
Usage: python benchmarks/eval_per_image.py [--images 1024] [--repeats 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.table import Table
from torch.utils.data import DataLoader, Dataset

from facecli.data import workers as worker_setup
from facecli.data.synth import identity_traits, render_image
from facecli.embed.backends import TorchEmbedder
from facecli.embed.loader import embed_images
from facecli.models import create_model
from facecli.runtime import resolve_runtime


class PortImages(Dataset):
    """The ports' per-image work: PIL open, RGB, letterbox to 160 (bicubic, grey), float CHW / 255."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> np.ndarray:
        image = Image.open(self.paths[index]).convert("RGB")
        w, h = image.size
        scale = min(160 / w, 160 / h)
        resized = image.resize((int(w * scale), int(h * scale)), Image.BICUBIC)
        canvas = Image.new("RGB", (160, 160), (128, 128, 128))
        canvas.paste(resized, ((160 - resized.size[0]) // 2, (160 - resized.size[1]) // 2))
        return np.asarray(canvas, np.float32).transpose(2, 0, 1) / 255.0


def port_rate(model: torch.nn.Module, paths: list[Path]) -> float:
    loader = DataLoader(PortImages(paths), batch_size=32, num_workers=1)
    started = time.perf_counter()
    with torch.no_grad():
        for batch in loader:
            model(batch)
    return len(paths) / (time.perf_counter() - started)


def facecli_rate(embedder: TorchEmbedder, paths: list[Path], batch_size: int | None) -> float:
    started = time.perf_counter()
    embed_images(embedder, paths, batch_size=batch_size, workers=1)
    return len(paths) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = create_model("mobilenet").eval()
    embedder = TorchEmbedder(model, resolve_runtime("cpu", "fp32", channels_last=False))
    rng = np.random.default_rng(0)
    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for n in range(args.images):
            path = Path(tmp) / f"{n:05d}.jpg"
            Image.fromarray(render_image(identity_traits(rng), 250, rng)).save(path, quality=90)
            paths.append(path)
        nice = worker_setup.os.nice
        for _ in range(args.repeats):  # alternate, so that the machine's drift falls on every row alike
            rows.setdefault("the ports' loop (PIL, letterbox, batch 32)", []).append(port_rate(model, paths))
            rows.setdefault("facecli, default batch (8 for PyTorch on a CPU)", []).append(
                facecli_rate(embedder, paths, None)
            )
            for batch in (8, 32, 64):
                rows.setdefault(f"facecli, batch {batch}", []).append(facecli_rate(embedder, paths, batch))
            worker_setup.os.nice = lambda increment: 0  # workers at the model's priority
            rows.setdefault("facecli, batch 64, workers not niced", []).append(facecli_rate(embedder, paths, 64))
            worker_setup.os.nice = nice
    table = Table(title=f"{args.images} images 250x250 -> mobilenet 160 px, fp32 contiguous, 1 worker, CPU")
    for column in ("path", "img/s (each run)", "best"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for name, rates in rows.items():
        table.add_row(name, ", ".join(f"{r:.1f}" for r in rates), f"{max(rates):.1f}")
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
