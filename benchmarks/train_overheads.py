"""What the no-flag run's own measurements cost: the step-time probe and the validation on held-back
identities, against the wall time of the run they are part of.

Validation: the same run (same held-back split, same steps) validating every 2 epochs against once at the
end. Probe: training/probe.py on the run's model and batch, timed alone. A run sized to a 60 s budget shows
how close the sizing lands.
Usage: python benchmarks/train_overheads.py [--identities 60 --epochs 30]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from facecli.data.synth import synth
from facecli.losses.options import build_loss
from facecli.models import create_model
from facecli.runtime import resolve_runtime
from facecli.training import TrainOptions, train
from facecli.training.distributed import Process
from facecli.training.optim import build_optimizer
from facecli.training.precision import precision_for
from facecli.training.probe import probe_labels, seconds_per_step
from facecli.training.setup import set_up
from facecli.training.step import TrainStep


def timed_run(**options: object) -> tuple[float, int, str]:
    started = time.perf_counter()
    result = train(TrainOptions(device="cpu", img_size=64, **options))
    return time.perf_counter() - started, len(result.history), result.stopped


def probe_seconds() -> float:
    """Wall time of the probe for the recipe's model at 64 px, batch 64 (P x K of 16 x 4)."""
    model = create_model("timm/resnet10t", input_size=64, embedding_size=128)
    runtime = resolve_runtime("cpu").for_model(model.config.backbone, training=True)
    net = runtime.prepare(TrainStep(model, build_loss("triplet", 128, 54, {}), False))
    precision = precision_for(runtime)
    optimizer = build_optimizer(net, "adamw", 2e-3, 5e-4)
    started = time.perf_counter()
    seconds_per_step(net, optimizer, precision, model.config.preprocessing, probe_labels(64, 4, 54), 64)
    return time.perf_counter() - started


def fitted_probe_seconds(work: Path) -> tuple[float, str]:
    """Set-up time of a recipe-sized iresnet18 run on 96 px faces (its probe finds 96 px too slow, the size is
    fitted and probed again) less that of the same run with its epochs and size given (no probe): the cost of
    fitting the size, and what it chose."""
    synth(work / "f96", identities=26, images=10, size=96, seed=2)
    common = dict(data=work / "f96", device="cpu", loss="arcface", backbone="iresnet18", workers=0)
    seconds, chosen = [], ""
    for name, given in (("fitted", {}), ("given", {"epochs": 1, "img_size": 32})):
        options = TrainOptions(run_dir=work / name, **common, **given).check()
        started = time.perf_counter()
        run, _ = set_up(options, Process(), "cpu", resume=False, force=False, lock_note=None, started=started)
        seconds.append(time.perf_counter() - started)
        chosen = chosen or f"{run.options.img_size} px, {run.options.epochs} epochs"
    return seconds[0] - seconds[1], chosen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--identities", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        synth(work / "faces", identities=args.identities, images=8, size=64, seed=3)
        common = dict(data=work / "faces", epochs=args.epochs)
        often = timed_run(run_dir=work / "often", val_every=2, **common)
        once = timed_run(run_dir=work / "once", val_every=args.epochs, **common)
        budget = timed_run(run_dir=work / "budget", data=work / "faces", time_budget=60)
        fitting, fitted = fitted_probe_seconds(work)
    probe = probe_seconds()
    validations = args.epochs // 2 - 1
    table = Table(title=f"no-flag run overheads, {args.identities} synthetic identities x 8 at 64 px, 2 CPU cores")
    for column in ("measured", "seconds", "share"):
        table.add_column(column)
    table.add_row(f"{args.epochs} epochs validating every 2", f"{often[0]:.1f}", "")
    table.add_row(f"{args.epochs} epochs validating once", f"{once[0]:.1f}", "")
    per = (often[0] - once[0]) / validations
    table.add_row("one validation on the held-back pairs", f"{per:.2f}", f"x20 a run: {20 * per / 210:.1%} of 210 s")
    table.add_row("step-time probe", f"{probe:.2f}", f"{probe / 210:.1%} of 210 s")
    table.add_row(f"iresnet18 on 96 px faces: probe, fit the size ({fitted}), probe again", f"{fitting:.2f}",
                  f"{fitting / 210:.1%} of 210 s")  # fmt: skip
    table.add_row(f"run sized to a 60 s budget ({budget[1]} epochs, {budget[2]})", f"{budget[0]:.1f}", "")
    Console().print(table)


if __name__ == "__main__":
    main()
