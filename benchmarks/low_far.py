"""TAR at very low FAR on many pairs: time and peak memory of `tar_at_far` (one sort of the impostor
scores) and of the whole `facecli eval` report (10-fold accuracy, AUC, EER, TAR@FAR) on synthetic scores.

Usage: python benchmarks/low_far.py [--pairs 10000000] [--genuine 0.01]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from rich.console import Console
from rich.table import Table

from facecli.verification.metrics import tar_at_far, verification_report


def measured(function, *args):  # noqa: ANN001, ANN202
    """(result, seconds, peak MiB allocated by numpy and Python during the call)."""
    tracemalloc.start()
    started = time.perf_counter()
    result = function(*args)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return result, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10_000_000)
    parser.add_argument("--genuine", type=float, default=0.01, help="share of genuine pairs")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    labels = (rng.random(args.pairs) < args.genuine).astype(np.int64)
    scores = rng.normal(0.0, 0.1, args.pairs) + labels * rng.normal(0.5, 0.15, args.pairs)  # cosine-like
    inputs_mib = (scores.nbytes + labels.nbytes) / 2**20
    tars, tar_s, tar_peak = measured(tar_at_far, scores, labels)
    report, report_s, report_peak = measured(verification_report, scores, labels, "cosine")
    table = Table(title=f"{args.pairs:,} pairs ({labels.sum():,} genuine); the inputs take {inputs_mib:.0f} MiB")
    for column in ("computation", "seconds", "peak MiB beyond the inputs"):
        table.add_column(column, justify="left" if column == "computation" else "right")
    table.add_row("tar_at_far (FAR 1e-1 .. 1e-6)", f"{tar_s:.2f}", f"{tar_peak:.0f}")
    table.add_row("whole eval report", f"{report_s:.2f}", f"{report_peak:.0f}")
    console = Console(width=120)
    console.print(table)
    console.print("TAR@FAR: " + ", ".join(f"{far}: {tar:.4f}" for far, tar in tars.items()))
    console.print(f"report: AUC {report.auc:.4f}, EER {report.eer:.4f}, accuracy {report.accuracy_mean:.4f}")


if __name__ == "__main__":
    main()
