"""Reading training data from a folder tree against an insightface .rec: start-up (finding the images and
their labels) and loader images/s at 112 px, also as one rank of two reads its own half of the .rec.

Start-up: `--images` JPEGs in `--identities` folders, read as `facecli train` reads them (the folder scan
checks each file's header; the .rec is opened through its .idx and identity records). Throughput: the
training loader (decode, augment, preprocess in one worker) over the same images from each source.
Usage: python benchmarks/data_formats.py [--images 100000] [--identities 2000] [--throughput-images 4096]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from facecli.data.batch_plan import plan_batches
from facecli.data.packing import pack_images
from facecli.data.samplers import TrainBatchSampler
from facecli.data.training_set import TrainImages, read_training_set, train_loader
from facecli.data.transforms import Preprocessing


def make_folders(root: Path, images: int, identities: int) -> None:
    """`images` 112 px JPEGs (a few distinct ones, copied) in `identities` folders."""
    rng = np.random.default_rng(0)
    encoded = [cv2.imencode(".jpg", rng.integers(0, 255, (112, 112, 3), dtype=np.uint8))[1].tobytes() for _ in range(8)]
    for n in range(images):
        folder = root / f"id{n % identities:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{n:07d}.jpg").write_bytes(encoded[n % len(encoded)])


def loader_rate(data, images: int, split: bool = False) -> float:  # noqa: ANN001
    """Images/s of the training loader over `images` images (one worker, batch 64, light augmentation);
    `split`: as rank 0 of 2 reads a .rec under DDP (its own half, block by block)."""
    preprocessing = Preprocessing((112, 112), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "RGB", "resize")
    if split:
        order = np.argsort(data.offsets, kind="stable")
        sampler = TrainBatchSampler(
            plan_batches(data.labels, 64, "random", rank=0, world_size=2, file_order=order), epochs=1
        )
    else:
        sampler = TrainBatchSampler(plan_batches(data.labels, 64, "random"), epochs=1)
    loader = train_loader(TrainImages(data, preprocessing, "light"), sampler, 1, torch.device("cpu"))
    started, seen = time.perf_counter(), 0
    for batch, *_ in loader:
        seen += len(batch)
        if seen >= images:
            break
    return seen / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--identities", type=int, default=2000)
    parser.add_argument("--throughput-images", type=int, default=4096)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        make_folders(work / "faces", args.images, args.identities)
        made = time.perf_counter() - started
        started = time.perf_counter()
        pack_images(work / "faces", work / "train.rec")
        packed = time.perf_counter() - started
        for name, source in (("folder tree", work / "faces"), (".rec + .idx", work / "train.rec")):
            started = time.perf_counter()
            data = read_training_set(source)
            opened = time.perf_counter() - started
            rows.append((name, len(data.paths), opened, loader_rate(data, args.throughput_images)))
        rows.append((".rec split by rank (rank 0 of 2)", len(data.paths) // 2, opened,
                     loader_rate(data, args.throughput_images, split=True)))  # fmt: skip
    table = Table(title=f"{args.images} images of {args.identities} identities, 112 px JPEGs, 2-core CPU")
    for column in ("source", "images", "start-up s", "loader images/s"):
        table.add_column(column, justify="left" if column == "source" else "right")
    for name, count, opened, rate in rows:
        table.add_row(name, str(count), f"{opened:.2f}", f"{rate:.0f}")
    console = Console(width=120)
    console.print(table)
    console.print(f"writing the folders took {made:.1f} s; facecli pack {packed:.1f} s")


if __name__ == "__main__":
    main()
