"""Peak memory of `facecli eval` as the number of images grows (10k to 100k by default).

Each size runs in a fresh process that generates nothing itself: the images (`facecli synth`, 32 px)
and a pairs file using every image once are made first, then `eval` runs and reports its own peak
resident memory. Embeddings past 20k images go to a memory-mapped file and pairs are scored in blocks,
so the peak should stay nearly flat. Usage: python benchmarks/eval_memory.py [--sizes 10000 100000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from facecli.checkpoint import save_model
from facecli.data.synth import synth
from facecli.models import create_model

IMAGES_PER_IDENTITY = 10

MEASURE = """
import resource, sys, time
from pathlib import Path
from facecli.embed import EmbedOptions
from facecli.verification import PairsInput, evaluate
from facecli.runtime import resolve_runtime
model, pairs, root = map(Path, sys.argv[1:4])
start = time.perf_counter()
report = evaluate(
    checkpoint=model,
    pairs=PairsInput(pairs, root),
    embedding=EmbedOptions(resolve_runtime("cpu", "fp32"), batch_size=256),
)
print(report.images, time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def write_pairs(root: Path, identities: int, path: Path) -> None:
    """Every image once: within each identity, images 1-2 3-4 5-6 genuine, 7 and 9 paired with the next identity."""
    lines = []
    for n in range(identities):
        name, other = f"person_{n:04d}", f"person_{(n + 1) % identities:04d}"
        for k in (1, 3, 5):
            lines.append(f"{name}/{name}_{k:04d}.jpg\t{name}/{name}_{k + 1:04d}.jpg\t1")
        for k in (7, 9):
            lines.append(f"{name}/{name}_{k:04d}.jpg\t{other}/{other}_{k + 1:04d}.jpg\t0")
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    table = Table(title="facecli eval: peak memory (main process) against data set size")
    for column in ("images", "pairs", "eval seconds", "images/s", "peak RSS (MiB)"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = save_model(create_model("mobilenet", input_size=32), work / "model.safetensors")
        for size in sorted(args.sizes):
            identities = size // IMAGES_PER_IDENTITY
            start = time.perf_counter()
            synth(work / f"faces{size}", identities=identities, images=IMAGES_PER_IDENTITY, size=32, seed=0)
            Console().print(f"generated {size} images in {time.perf_counter() - start:.0f}s", highlight=False)
            pairs = work / f"pairs{size}.txt"
            write_pairs(work / f"faces{size}", identities, pairs)
            run = subprocess.run(
                [sys.executable, "-c", MEASURE, str(model), str(pairs), str(work / f"faces{size}")],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            images, seconds, peak = run.stdout.split()[-3:]
            table.add_row(images, str(identities * 5), f"{float(seconds):.0f}",
                          f"{int(images) / float(seconds):.0f}", f"{float(peak):.0f}")  # fmt: skip
            Console().print(f"{size} images: peak {float(peak):.0f} MiB", highlight=False)
    Console().print(table)


if __name__ == "__main__":
    main()
