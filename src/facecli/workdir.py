"""The working-folder conventions of the FaceNet ports and ultralytics: `./cls_train.txt` is the training
data, `./runs/train`, `./runs/train2`, ... are the runs, the newest run's best model is the model, and a
pairs file named as the seed repositories name theirs is the pairs. Each default is said in one line, with
where it came from and the option that chooses otherwise."""

from __future__ import annotations

import logging
from pathlib import Path

from facecli.errors import FaceCliError

RUNS = Path("runs")
TRAINING_LIST = Path("cls_train.txt")
PAIRS_NAMES = ("lfw_pair.txt", "pairs.txt", "LfwPairs.csv", "lfw_test_pair.txt")
MODEL_FILES = ("best.safetensors", "last.safetensors")
log = logging.getLogger(__name__)


def training_list() -> Path:
    """`./cls_train.txt`, the file `facecli annotate` writes."""
    if not TRAINING_LIST.is_file():
        raise FaceCliError(
            f"no --data given and no {TRAINING_LIST} in the working folder: write one with "
            "'facecli annotate DATASET_DIR', or pass --data"
        )
    log.info(f"data: {TRAINING_LIST} (found in the working folder; --data to choose)")
    return TRAINING_LIST


def new_run_dir() -> Path:
    """A run folder no run has used: runs/train, then runs/train2, runs/train3, ..."""
    number = 1
    while (path := RUNS / ("train" if number == 1 else f"train{number}")).exists():
        number += 1
    log.info(f"run folder: {path} (a new one under {RUNS}/; --run-dir to choose)")
    return path


def runs_newest_first() -> list[Path]:
    """The runs under ./runs/ (folders with a config.json), the one started last first."""
    runs = [d for d in RUNS.iterdir() if (d / "config.json").is_file()] if RUNS.is_dir() else []
    return sorted(runs, key=lambda d: ((d / "config.json").stat().st_mtime_ns, d.name), reverse=True)


def newest_model() -> Path:
    """The best model of the newest run under ./runs/ that has one (its last where it has no best)."""
    runs = runs_newest_first()
    for run in runs:
        for name in MODEL_FILES:
            if (run / name).is_file():
                log.info(f"model: {run / name} (the newest run's {name.split('.')[0]} model; -c to choose)")
                return run / name
    where = f"no run under {RUNS}/ has a model file yet" if runs else f"there is no run under {RUNS}/"
    raise FaceCliError(f"no -c given and {where}: train one with 'facecli train', or pass -c MODEL")


def pairs_file() -> Path:
    """The one pairs file in the working folder named as the seed repositories name theirs."""
    found = [Path(name) for name in PAIRS_NAMES if Path(name).is_file()]
    if len(found) != 1:
        what = f"{len(found)}: {', '.join(map(str, found))}" if found else f"none of {', '.join(PAIRS_NAMES)}"
        raise FaceCliError(f"no --pairs given and the working folder holds {what}; pass --pairs FILE")
    log.info(f"pairs: {found[0]} (found in the working folder; --pairs to choose)")
    return found[0]
