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
from tests.processes import MARKER, marked_processes, session_processes

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


def _rank_pids(marker: str) -> list[int]:
    """The training ranks: the `-m facecli train` processes whose parent is torchrun."""
    found = []
    for line in marked_processes(marker, set()):
        pid, command = line.split(" ", 1)
        stat = _read_stat(int(pid))
        if "facecli train" in command and stat and "torch.distributed.run" in _command_of(int(stat[1])):
            found.append(int(pid))
    return found


def _read_stat(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return []


def _command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["the launcher", "one rank"])
def test_a_killed_distributed_run_leaves_no_process_behind(data, tmp_path, victim):
    marker = f"ddp-{victim.replace(' ', '-')}-{os.getpid()}-{time.monotonic_ns()}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", MARKER: marker}
    command = [*_command("train", data, tmp_path), "--nproc", "2"]
    launcher = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        # the launcher, torchrun, two ranks and, for each rank, the forkserver and a loader worker
        while len(marked_processes(marker, set())) < 8 and launcher.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert launcher.poll() is None and len(marked_processes(marker, set())) >= 8, marked_processes(marker, set())
        target = launcher.pid if victim == "the launcher" else _rank_pids(marker)[0]
        os.kill(target, signal.SIGKILL)
        deadline = time.monotonic() + 20  # measured: 0.4 s (launcher), 3.9 s (one rank: torchrun stops the other)
        while marked_processes(marker, set()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not marked_processes(marker, set()), f"left behind: {marked_processes(marker, set())}"
    finally:
        for line in marked_processes(marker, set()):
            os.kill(int(line.split(" ", 1)[0]), signal.SIGKILL)
        launcher.wait(timeout=30)
