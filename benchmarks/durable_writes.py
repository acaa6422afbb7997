"""What durable writes cost: saving a checkpoint with fsync (file, then folder) against without.

Usage: python benchmarks/durable_writes.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

import facecli.fileio as fileio
from facecli.checkpoint import save_model
from facecli.models import create_model


def seconds(model, folder: Path, repeats: int) -> float:  # noqa: ANN001
    times = []
    for n in range(repeats):
        start = time.perf_counter()
        save_model(model, folder / f"m{n}.safetensors")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    table = Table(title="checkpoint save, median of runs")
    for column in ("backbone", "MB", "durable (s)", "no fsync (s)", "cost"):
        table.add_column(column, justify="right")
    real = fileio._fsync
    for name in ("timm/resnet10t", "iresnet50"):
        model = create_model(name)
        megabytes = sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 2**20
        with tempfile.TemporaryDirectory(dir=".") as tmp:
            durable = seconds(model, Path(tmp) / "a", args.repeats)
            fileio._fsync = lambda *a, **k: None
            plain = seconds(model, Path(tmp) / "b", args.repeats)
            fileio._fsync = real
        table.add_row(name, f"{megabytes:.0f}", f"{durable:.3f}", f"{plain:.3f}", f"{durable / plain - 1:+.0%}")
    Console().print(table)


if __name__ == "__main__":
    main()
