"""A budget-sized run's length re-measured from its own epochs, once, where the probe's step time was wrong."""

import json

import pytest

from facecli.data.synth import synth
from facecli.training import TrainOptions, run_length, setup, train
from facecli.training.run_length import RESIZE_AFTER, RunPace, resized_run, size_run


def _planned(epochs=100):
    options = TrainOptions(data="d", run_dir="r", time_budget=200.0, val_pairs="p.txt", batch_size=64, recipe={})
    sized = size_run(options, 200 * run_length.LOADER_EFFICIENCY / epochs, 1, 0)
    assert sized.epochs == epochs
    return sized


def test_the_length_follows_the_runs_own_epochs_where_they_differ_from_the_plan():
    planned = _planned()
    assert planned.val_every == 5
    faster = resized_run(planned, done=10, epoch_seconds=1.0, seconds_left=140.0)
    assert (faster.epochs, faster.val_every) == (150, 8)  # still about 20 validations
    assert "re-measured after 10 epochs at 1.00 s an epoch: 100 -> 150" in faster.recipe["epochs"]["reason"]
    assert faster.recipe["epochs"]["by"] == "recipe" and faster.recipe["epochs"]["value"] == 150
    assert resized_run(planned, done=10, epoch_seconds=2.0, seconds_left=90.0).epochs == 55  # slower: fewer
    assert resized_run(planned, done=10, epoch_seconds=1.0, seconds_left=95.0) is None  # within 10%: kept
    assert resized_run(planned, done=10, epoch_seconds=1.0, seconds_left=1e6).epochs == run_length.MAX_EPOCHS
    assert resized_run(planned, done=50, epoch_seconds=50.0, seconds_left=0.0).epochs == 51  # at least one more


def test_the_pace_counts_from_the_first_epochs_end_and_decides_once(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(run_length.time, "perf_counter", lambda: clock[0])
    planned, pace = _planned(), RunPace(started=0.0, active=True)
    clock[0] = 10.0  # the first epoch, with the loader's start
    assert pace.resized(planned, 1) is None and pace.first == (1, 10.0)
    clock[0] = 11.0
    assert pace.resized(planned, 2) is None and pace.active  # before RESIZE_AFTER of the budget
    clock[0] = RESIZE_AFTER * 200.0 + 1.0  # 31 s: 19 more epochs in 21 s
    resized = pace.resized(planned, 20)
    assert resized.epochs == 20 + int((200.0 - 31.0) // (21.0 / 19)) and not pace.active
    assert pace.resized(planned, 21) is None  # once
    assert RunPace(started=0.0, active=False).resized(planned, 2) is None  # a given length or a resumed run
    short, early = _planned(epochs=4), RunPace(started=0.0, active=True)  # planned to end before 15% of it
    clock[0] = 1.0
    assert early.resized(short, 1) is None and early.resized(short, 2) is None
    clock[0] = 1.2
    assert early.resized(short, 3).epochs == run_length.MAX_EPOCHS  # at the last epoch but one: 0.1 s each


def test_a_run_whose_probe_said_steps_were_slow_trains_more_epochs_to_fill_its_budget(tmp_path, monkeypatch):
    synth(tmp_path / "faces", identities=6, images=4, size=32, seed=3)
    monkeypatch.setattr(setup, "seconds_per_step", lambda *args, **kwargs: 2.0)  # ~40x the real step
    # a budget of 15 s: the start-up alone took 2-8 s here, and the run must have time left to re-measure
    result = train(TrainOptions(data=tmp_path / "faces", run_dir=tmp_path / "run", time_budget=15, img_size=32,
                                workers=0, device="cpu", embedding_size=16))  # fmt: skip
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    planned = int(saved["recipe"]["epochs"]["reason"].rsplit(": ", 1)[1].split(" -> ")[0])
    assert planned <= 15 / 2 and saved["epochs"] > 2 * planned  # planned at 2 s a step; more at the real pace
    assert result.epochs_done == saved["epochs"] and result.stopped == "finished"
    assert any(f"length re-measured ({planned} epochs planned)" in note for note in result.notes)
    assert result.seconds < 15 * 1.5


@pytest.mark.parametrize("given", [{"epochs": 3}, {"time_budget": None}])
def test_a_given_length_is_not_re_measured(given):
    options = TrainOptions(data="d", run_dir="r", **{"time_budget": 8.0, **given})
    assert not options.sized_by_budget()


def test_two_processes_sized_to_a_budget_agree_on_the_length(tmp_path):
    """Every rank takes rank 0's decision at each epoch end until the length is re-measured: no rank waits alone."""
    import os
    import subprocess
    import sys

    synth(tmp_path / "faces", identities=8, images=6, size=32, seed=3)
    command = [
        sys.executable, "-m", "facecli", "train", "--nproc", "2", "--data", str(tmp_path / "faces"),
        "--run-dir", str(tmp_path / "run"), "--img-size", "32", "--embedding-size", "16", "--batch-size", "8",
        "--k", "2", "--time-budget", "20", "--workers", "0", "--device", "cpu",
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert "2 process(es)" in done.stderr and saved["recipe"]["epochs"]["by"] == "recipe"
    assert len((tmp_path / "run" / "metrics.csv").read_text().splitlines()) == saved["epochs"] + 1
