"""One writer per run folder and per gallery index: a second is refused naming the holder; a lock left by a
holder killed with SIGKILL is taken over with a note."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from facecli.cli import app
from facecli.data.annotation import annotate
from facecli.data.synth import synth
from facecli.embed import EmbedOptions
from facecli.errors import FaceCliError
from facecli.identification import build_index
from facecli.runtime import resolve_runtime
from facecli.training import TrainOptions, train
from facecli.training.run_folder import LOCK_FILE
from facecli.writer_lock import writer_lock

runner = CliRunner()


def test_a_second_writer_is_refused_naming_the_holder_and_a_clean_end_frees_the_lock(tmp_path):
    lock = tmp_path / "x.lock"
    with writer_lock(lock, "thing") as note:
        assert note is None
        with pytest.raises(
            FaceCliError, match=rf"thing is being written by .*pid {os.getpid()} on {socket.gethostname()}"
        ):
            with writer_lock(lock, "thing"):
                pass
    with writer_lock(lock, "thing") as note:
        assert note is None  # the first ended cleanly: nothing to take over


def test_train_and_index_refuse_a_folder_or_index_being_written(tmp_path):
    synth(tmp_path / "faces", identities=3, images=2, size=32, seed=2)
    run = tmp_path / "run"
    with writer_lock(run / LOCK_FILE, "held"), pytest.raises(FaceCliError, match="being written by"):
        train(TrainOptions(data=tmp_path / "faces", run_dir=run, epochs=1, device="cpu", workers=0))
    out = tmp_path / "g.index"
    embedding = EmbedOptions(resolve_runtime("cpu", "fp32"), workers=0)
    with writer_lock(tmp_path / ".g.index.lock", "held"), pytest.raises(FaceCliError, match="being written by"):
        build_index(out=out, embedding=embedding, add=tmp_path / "faces")
    assert not out.exists()


def test_a_lock_left_by_a_killed_training_is_taken_over_with_a_note(tmp_path):
    synth(tmp_path / "faces", identities=4, images=4, size=32, seed=3)
    annotate(tmp_path / "faces", out_dir=tmp_path)
    run = tmp_path / "run"
    command = [sys.executable, "-m", "facecli", "train", "--data", str(tmp_path / "cls_train.txt"),
               "--run-dir", str(run), "--backbone", "mobilenet", "--img-size", "32", "--embedding-size", "8",
               "--loss", "softmax", "--epochs", "500", "--batch-size", "4", "--workers", "0", "--device", "cpu",
               "--checkpoint-every", "1"]  # fmt: skip
    holder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (run / "last_state.pt").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        second = runner.invoke(app, ["train", "--resume", str(run)])
        assert second.exit_code == 2
        assert f"being written by another facecli process (pid {holder.pid}" in " ".join(second.output.split())
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    resumed = runner.invoke(app, ["train", "--resume", str(run), "--epochs", "1"])
    assert resumed.exit_code == 0, resumed.output
    assert f"took over the lock on run folder {run} left by a process that is gone (pid {holder.pid}" in " ".join(
        resumed.output.split()
    )
