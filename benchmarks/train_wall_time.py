"""A no-flag run's wall time against its time budget, alone and with the machine busy while its step time is
probed: two processes spinning for the first --busy seconds of the run. The grey96x10 set of
train_recipes.py (40 grey identities x 10 at 96 px, 14 held out), the model the run keeps verified on its
held-out pairs. Usage: python benchmarks/train_wall_time.py [--busy 0 20] [--recipes "auto @64" auto]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from train_recipes import make_set, recipe_options

from facecli.embed import EmbedOptions
from facecli.runtime import resolve_runtime
from facecli.training import TrainOptions, train
from facecli.verification import PairsInput, evaluate


def busy(seconds: float) -> None:
    """Two processes spinning for `seconds` (the machine's two cores), from now."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    threading.Timer(seconds, lambda: [s.kill() for s in spinners]).start()


def timed(work: Path, recipe: str, busy_seconds: float) -> dict:
    run_dir = work / f"run{len(list(work.glob('run*')))}"
    options = TrainOptions(data=work / "cls_train.txt", run_dir=run_dir, device="cpu", **recipe_options(recipe))
    if busy_seconds:
        busy(busy_seconds)
    started = time.perf_counter()
    result = train(options)
    wall = time.perf_counter() - started
    saved = json.loads((run_dir / "config.json").read_text())
    kept = run_dir / "best.safetensors" if (run_dir / "best.safetensors").exists() else run_dir / "last.safetensors"
    embedding = EmbedOptions(resolve_runtime("cpu"), backend="torch")
    report = evaluate(checkpoint=kept, pairs=PairsInput(work / "pairs.txt", root=work / "faces"), embedding=embedding)
    return {
        "recipe": recipe, "busy": busy_seconds, "budget": saved["time_budget"], "wall": round(wall, 1),
        "epochs": result.epochs_done, "why": saved["recipe"]["epochs"]["reason"], "held_out": report.accuracy_mean,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=float, nargs="+", default=[0.0, 20.0], help="Seconds the machine is busy.")
    parser.add_argument("--recipes", nargs="+", default=["auto @64"], help="train_recipes.py's names.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make_set("grey96x10", work)
        for recipe in args.recipes:
            for seconds in args.busy:
                print(json.dumps(timed(work, recipe, seconds)), flush=True)


if __name__ == "__main__":
    main()
