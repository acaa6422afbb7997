"""A killed facecli leaves nothing behind: its loader workers, their forkserver and the resource tracker
end within seconds of its death, however it dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facecli.checkpoint import save_model
from facecli.data.annotation import annotate
from facecli.data.synth import synth
from facecli.models import create_model
from tests.processes import session_processes

FACECLI = [sys.executable, "-m", "facecli"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("orphans")
    synth(tmp / "faces", identities=40, images=5, size=48, seed=9)
    annotate(tmp / "faces", out_dir=tmp, pairs=400, folds=2, pairs_out=tmp / "pairs.txt")
    save_model(create_model("mobilenet", input_size=48, embedding_size=8).eval(), tmp / "m.safetensors")
    return tmp


def _command(name: str, data: Path, out: Path) -> list[str]:
    if name == "train":
        return [*FACECLI, "train", "--data", str(data / "cls_train.txt"), "--run-dir", str(out / "run"),
                "--backbone", "mobilenet", "--img-size", "48", "--embedding-size", "8", "--epochs", "50",
                "--batch-size", "8", "--workers", "1", "--device", "cpu"]  # fmt: skip
    return [*FACECLI, "eval", "-c", str(data / "m.safetensors"), "--pairs", str(data / "pairs.txt"),
            "--root", str(data / "faces"), "--batch-size", "2", "--workers", "1", "--device", "cpu"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
@pytest.mark.parametrize("name", ["train", "eval"])
def test_a_killed_command_leaves_no_process_behind(data, tmp_path, name, how):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        _command(name, data, tmp_path), env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while len(session_processes(proc.pid)) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # facecli, the forkserver and a loader worker
    assert proc.poll() is None and len(session_processes(proc.pid)) >= 3, "the loader never started"
    os.kill(proc.pid, how)  # facecli alone, as the OOM killer or a scheduler does, not its process group
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not session_processes(proc.pid), f"left behind: {session_processes(proc.pid)}"
