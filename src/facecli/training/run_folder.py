"""A training run's folder: the files a run holds, the refusal to start over one without --force, and the
lock that keeps a second writer out."""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

from facecli.errors import FaceCliError
from facecli.fileio import check_writable, read_text
from facecli.training.bad_images import BAD_FILE
from facecli.writer_lock import writer_lock

STATE_FILE, LAST_FILE, BEST_FILE = "last_state.pt", "last.safetensors", "best.safetensors"
LOCK_FILE = ".facecli.lock"
log = logging.getLogger(__name__)
RUN_FILES = (
    "config.json", "classes.txt", "metrics.csv", "curves.png", STATE_FILE, LAST_FILE, BEST_FILE, BAD_FILE,
    "tensorboard", "val_pairs.csv",
)  # fmt: skip


def existing_run(run_dir: Path, resume: bool, force: bool) -> list[Path]:
    """The run files `--force` will replace; refuses, before any work, a run folder that is in use."""
    if resume:
        if not (run_dir / STATE_FILE).is_file():
            raise FaceCliError(f"{run_dir}: no {STATE_FILE} to resume from")
        return []
    existing = [run_dir / name for name in RUN_FILES if (run_dir / name).exists()]
    if existing and not force and not (run_dir / "config.json").exists():
        raise FaceCliError(
            f"{run_dir} holds {', '.join(p.name for p in existing)} but no run (no config.json); choose another "
            "--run-dir, or --force to replace them"
        )
    if existing and not force:
        raise FaceCliError(
            f"{run_dir} already holds a run ({', '.join(p.name for p in existing)}); "
            f"use --resume {run_dir} to continue it or --force to start over"
        )
    return existing


def check_outside_data(run_dir: Path, data: Path) -> None:
    """Refuse a run folder in a training folder: the next run on that folder would read the run's own files
    (curves.png) as the photos of a new identity, and the run could not be resumed."""
    if not data.is_dir():
        return
    inside, folder = run_dir.resolve(), data.resolve()
    if inside == folder or folder in inside.parents:
        raise FaceCliError(
            f"the run folder {run_dir} is inside the training folder {data}: its files would be read as a new "
            "identity by the next run on that folder; choose one outside it with --run-dir"
        )


@contextlib.contextmanager
def run_folder_lock(run_dir: Path, is_main: bool) -> Iterator[str | None]:
    """Rank 0 holds the run folder's lock for the whole run (a second `train` or `--resume` into it is
    refused); a folder made for a run that then failed its checks is removed again. A folder that cannot be
    written (read-only, a file on the way) is refused first."""
    if not is_main:
        yield None
        return
    if run_dir.exists() and not run_dir.is_dir():
        raise FaceCliError(f"{run_dir}: exists and is not a folder")
    check_writable(run_dir / "config.json", force=True)
    created = not run_dir.exists()
    try:
        with writer_lock(run_dir / LOCK_FILE, f"run folder {run_dir}") as note:
            yield note
    finally:
        if created and run_dir.is_dir() and [p.name for p in run_dir.iterdir()] == [LOCK_FILE]:
            shutil.rmtree(run_dir)


def check_same_identities(run_dir: Path, classes: list[str]) -> None:
    """Refuse to resume on identities other than the run's (its classes.txt): its head has one row per identity,
    and its batches are drawn from them."""
    listed = run_dir / "classes.txt"
    if not listed.is_file():
        return
    before = [line.split(";", 1)[1] for line in read_text(listed).splitlines() if ";" in line]
    if before != list(classes):
        added, gone = sorted(set(classes) - set(before)), sorted(set(before) - set(classes))
        named = [f"{len(n)} {what} ({', '.join(n[:3])}{', ...' if len(n) > 3 else ''})"
                 for what, n in (("added", added), ("gone", gone)) if n]  # fmt: skip
        change = "; ".join(named) or "the same names in another order"
        raise FaceCliError(
            f"{run_dir}: trained on {len(before)} identities, the data now has {len(classes)}: {change}; "
            + _resume_hint(run_dir)
        )


def check_same_images(run_dir: Path, images: int, now: int) -> None:
    """Refuse to resume on a training set of another size than the run started with (a run saved before the
    count was kept is not checked)."""
    if images and images != now:
        raise FaceCliError(f"{run_dir}: started on {images} images, the data now has {now}; {_resume_hint(run_dir)}")


def _resume_hint(run_dir: Path) -> str:
    return (
        "resuming needs the data the run started with: restore it, or start a new run from this one with "
        f"--init {run_dir / LAST_FILE}"
    )


def newest_unfinished_run() -> Path:
    """The newest run under ./runs/, where it stopped before its end (interrupted, killed, bad images)."""
    from facecli.training.options import load_options
    from facecli.training.resume_file import load_training_state
    from facecli.training.state import EarlyStopping, TrainState
    from facecli.workdir import RUNS, runs_newest_first

    runs = runs_newest_first()
    if not runs:
        raise FaceCliError(f"--resume without a folder: there is no run under {RUNS}/ to continue")
    run = runs[0]
    options = load_options(run / "config.json")
    state = TrainState.from_dict(load_training_state(run / STATE_FILE)) if (run / STATE_FILE).is_file() else None
    if state is not None and (state.epoch >= options.epochs or EarlyStopping(options.patience)(state.best)):
        raise FaceCliError(
            f"--resume without a folder: the newest run, {run}, is finished (epoch {state.epoch} of {options.epochs}); "
            f"name a run to continue, or give more --epochs with --resume {run}"
        )
    log.info(f"resume: {run} (the newest run, unfinished; --resume FOLDER to choose)")
    return run
