"""`facecli eval` with no flags against a plain PyTorch LFW loop written as the FaceNet ports write it.

The real LFW pairs file (6000 pairs, 7701 images) is laid out with synthetic 250x250 JPEGs (LFW's size).
The plain loop is the ports' eval_LFW.py pattern: a Dataset of pairs that opens both images with PIL,
letterboxes them to 160 px, a DataLoader at batch 32, a contiguous fp32 mobilenet, both images of every
pair embedded (12000 forward passes). facecli runs `evaluate` with its defaults (the automatic backend
and memory format), the first time (which exports the model once) and again (reusing the export), and
with each explicit path. Usage: python benchmarks/eval_defaults.py [--pairs tests/fixtures/reference/lfw/lfw_pair.txt]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.table import Table
from torch.utils.data import DataLoader, Dataset

from facecli.checkpoint import load, save_model
from facecli.data.pairs import read_pairs, resolve_images
from facecli.data.synth import identity_traits, render_image
from facecli.data.workers import default_workers
from facecli.embed import EmbedOptions
from facecli.models import create_model
from facecli.runtime import resolve_runtime
from facecli.verification import PairsInput, evaluate

PAIRS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "reference" / "lfw" / "lfw_pair.txt"


def lay_out(pairs_file: Path, root: Path) -> int:
    """One synthetic 250x250 JPEG per image the pairs name; returns how many."""
    files = resolve_images(read_pairs(pairs_file), root)
    rng = np.random.default_rng(0)
    traits: dict[str, object] = {}
    for name, path in files.items():
        person = Path(name).parent.name
        traits.setdefault(person, identity_traits(rng))
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(render_image(traits[person], 250, rng), cv2.COLOR_RGB2BGR))
    return len(files)


def letterbox(image: Image.Image, size: int) -> np.ndarray:
    """The ports' resize: keep the aspect ratio, pad with grey 128, bicubic."""
    w, h = image.size
    scale = min(size / w, size / h)
    resized = image.resize((int(w * scale), int(h * scale)), Image.BICUBIC)
    canvas = Image.new("RGB", (size, size), (128, 128, 128))
    canvas.paste(resized, ((size - resized.size[0]) // 2, (size - resized.size[1]) // 2))
    return np.asarray(canvas, np.float32).transpose(2, 0, 1) / 255.0


class PortPairs(Dataset):
    """(image 1, image 2, label) per pair, as the ports' LFWDataset returns them."""

    def __init__(self, pairs_file: Path, root: Path) -> None:
        pairs = read_pairs(pairs_file)
        files = resolve_images(pairs, root)
        self.items = [
            (files[a], files[b], int(y)) for a, b, y in zip(pairs.left, pairs.right, pairs.labels, strict=True)
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, int]:
        a, b, label = self.items[index]
        return letterbox(Image.open(a).convert("RGB"), 160), letterbox(Image.open(b).convert("RGB"), 160), label


def port_loop(checkpoint: Path, pairs_file: Path, root: Path) -> int:
    """Embed both images of every pair, batch 32; returns the forward passes."""
    model = load(checkpoint).eval()
    loader = DataLoader(PortPairs(pairs_file, root), batch_size=32, num_workers=default_workers())
    distances = []
    with torch.no_grad():
        for a, b, _ in loader:
            distances.append(torch.linalg.norm(model(a) - model(b), dim=1).numpy())
    return 2 * sum(len(d) for d in distances)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, default=PAIRS)
    parser.add_argument("--defaults-only", action="store_true", help="Leave out the explicit PyTorch paths.")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        os.environ["FACECLI_CACHE"] = str(work / "cache")  # a first run that really exports
        images = lay_out(args.pairs, work / "lfw")
        checkpoint = work / "mobilenet.safetensors"
        save_model(create_model("mobilenet").eval(), checkpoint)
        started = time.perf_counter()
        passes = port_loop(checkpoint, args.pairs, work / "lfw")
        baseline = time.perf_counter() - started
        rows.append(("plain PyTorch loop (the ports' eval_LFW.py)", baseline, passes))
        source = PairsInput(args.pairs, work / "lfw")
        paths = [
            ("facecli eval, defaults (first run: exports once)", "auto", None),
            ("facecli eval, defaults (export reused)", "auto", None),
            ("facecli eval --backend torch --no-channels-last", "torch", False),
            ("facecli eval --backend torch --channels-last", "torch", True),
        ]
        for name, backend, channels_last in paths[:2] if args.defaults_only else paths:
            runtime = resolve_runtime("cpu", "auto", channels_last)
            started = time.perf_counter()
            report = evaluate(checkpoint=checkpoint, pairs=source, embedding=EmbedOptions(runtime, backend))
            rows.append((name, time.perf_counter() - started, report.forward_passes))
    table = Table(title=f"{images} images, 6000 pairs, mobilenet 160 px, 2-core CPU")
    for column in ("path", "wall s", "forward passes", "vs plain loop"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for name, seconds, passes in rows:
        table.add_row(name, f"{seconds:.1f}", str(passes), f"{seconds / baseline:.2f}")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
