"""Interruptions from outside: SIGKILL during training, a crash part-way through a checkpoint write,
SIGINT during eval. Real processes and real signals where the behaviour depends on them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import safetensors.torch
import torch
from safetensors.torch import load_file

from facecli.checkpoint import load, save_model
from facecli.data.annotation import annotate
from facecli.data.synth import synth
from facecli.models import create_model
from facecli.training.resume_file import load_training_state, save_training_state

FACECLI = [sys.executable, "-m", "facecli"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("interrupt")
    synth(tmp / "faces", identities=6, images=6, size=48, seed=5)
    annotate(tmp / "faces", out_dir=tmp, pairs=60, folds=2, pairs_out=tmp / "pairs.txt")
    return tmp


# the usual setup too: validated each epoch, on a backbone that trains in the contiguous format (validation
# once converted the training model to its own, channels_last, in place, and the resumed run differed)
SETUPS = {
    "mobilenet": ["--backbone", "mobilenet", "--img-size", "48", "--dropout", "0.2"],
    "validated each epoch": ["--backbone", "timm/resnet10t", "--img-size", "32", "--val-pairs", "{pairs}",
                             "--val-root", "{faces}", "--val-every", "1"],
}  # fmt: skip


def _train_args(data: Path, run: Path, setup: str = "mobilenet") -> list[str]:
    chosen = [a.format(pairs=data / "pairs.txt", faces=data / "faces") for a in SETUPS[setup]]
    return [*FACECLI, "train", "--data", str(data / "cls_train.txt"), "--run-dir", str(run), *chosen,
            "--embedding-size", "16", "--loss", "arcface", "--epochs", "2", "--batch-size", "6",
            "--sampler", "random", "--aug", "light", "--workers", "1", "--checkpoint-every", "1",
            "--device", "cpu"]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


@pytest.mark.slow
@pytest.mark.parametrize("setup", list(SETUPS))
def test_sigkill_mid_epoch_then_resume_ends_with_the_weights_of_an_uninterrupted_run(data, tmp_path, setup):
    subprocess.run(_train_args(data, tmp_path / "straight", setup), check=True, env=_env(), capture_output=True)
    run = tmp_path / "killed"
    proc = subprocess.Popen(
        _train_args(data, run, setup), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    state = run / "last_state.pt"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        # kill in the second epoch, once a mid-epoch checkpoint of it exists
        if state.is_file():
            try:
                saved = load_training_state(state)
            except Exception:  # noqa: BLE001  (being replaced this very moment: look again)
                saved = None
            if saved is not None and saved["epoch"] == 1 and saved["batch"] >= 2:
                proc.kill()
                break
        time.sleep(0.005)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed mid-epoch"
    killed_at = load_training_state(state)
    assert killed_at["epoch"] == 1 and 0 < killed_at["batch"] < 6
    resumed = subprocess.run([*FACECLI, "train", "--resume", str(run)], env=_env(), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    a, b = load_file(str(tmp_path / "straight" / "last.safetensors")), load_file(str(run / "last.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _crash_part_way(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> None:
    """Make module.name write half a file and then die, as a power cut or SIGKILL would."""
    real = getattr(module, name)

    def half_then_die(obj, path, *args, **kwargs):  # noqa: ANN001, ANN202
        real(obj, path, *args, **kwargs)
        data = Path(path).read_bytes()
        Path(path).write_bytes(data[: len(data) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(module, name, half_then_die)


def test_a_checkpoint_write_cut_part_way_leaves_the_previous_one_readable(tmp_path, monkeypatch):
    import facecli.checkpoint as checkpoint

    path = tmp_path / "last.safetensors"
    first = create_model("mobilenet", input_size=32, embedding_size=8)
    save_model(first, path)
    _crash_part_way(monkeypatch, checkpoint, "save_file")
    with pytest.raises(KeyboardInterrupt):
        save_model(create_model("mobilenet", input_size=32, embedding_size=8), path, force=True)
    reloaded = load(path)
    assert all(
        torch.equal(a, b) for a, b in zip(first.state_dict().values(), reloaded.state_dict().values(), strict=True)
    )
    assert not list(tmp_path.glob("*.tmp"))
    assert safetensors.torch.save_file is not checkpoint.save_file  # the crash was really injected


def test_a_training_state_write_cut_part_way_leaves_the_previous_one_readable(tmp_path, monkeypatch):
    import facecli.checkpoint as checkpoint

    path = tmp_path / "last_state.pt"
    save_training_state(path, {"step": 1, "weights": torch.ones(3)})
    _crash_part_way(monkeypatch, checkpoint.torch, "save")
    with pytest.raises(KeyboardInterrupt):
        save_training_state(path, {"step": 2, "weights": torch.zeros(3)})
    monkeypatch.undo()
    assert load_training_state(path)["step"] == 1
    assert not list(tmp_path.glob("*.tmp"))


def _children(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []


def _loading_torch(pid: int) -> bool:
    """True once the process has mapped libtorch: facecli's entry point runs and the libraries are loading."""
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.slow
def test_sigint_during_eval_exits_130_and_writes_no_report(tmp_path):
    synth(tmp_path / "faces", identities=40, images=5, size=48, seed=6)
    annotate(tmp_path / "faces", out_dir=tmp_path, pairs=200, folds=2, pairs_out=tmp_path / "pairs.txt")
    checkpoint = tmp_path / "big.safetensors"
    # ~200 images at 160 px through Inception-ResNet: several seconds, so the signal lands mid-way; on PyTorch
    # (--backend torch), as the auto backend would first export this new random model to ONNX for many seconds
    save_model(create_model("inception_resnetv1"), checkpoint)
    report, scores = tmp_path / "report.json", tmp_path / "scores.csv"
    args = [*FACECLI, "eval", "-c", str(checkpoint), "--pairs", str(tmp_path / "pairs.txt"), "--root",
            str(tmp_path / "faces"), "--device", "cpu", "--batch-size", "2", "--workers", "1", "--backend", "torch",
            "--report", str(report), "--scores", str(scores)]  # fmt: skip

    # a test runner's worker may ignore or block SIGINT, and children inherit both: give the command
    # the default disposition and an unblocked signal, as a shell would
    def restore() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    proc = subprocess.Popen(
        args, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=restore
    )
    assert proc.stderr is not None
    assert "runtime" in proc.stderr.readline()  # the command has started
    # wait for the loader's first child process, so the signal lands while images are embedded: sent
    # during start-up under heavy load it was seen to be lost (the command then finished normally)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline and not _children(proc.pid):
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, f"exit {proc.returncode} {time.monotonic() - sent:.1f}s after SIGINT\n{err}"
    assert "interrupted" in err and "Traceback" not in err, err
    assert not report.exists() and not scores.exists() and not list(tmp_path.glob("*.tmp"))


@pytest.fixture(scope="module")
def eval_world(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("startup")
    synth(tmp / "faces", identities=30, images=5, size=48, seed=8)
    annotate(tmp / "faces", out_dir=tmp, pairs=120, folds=2, pairs_out=tmp / "pairs.txt")
    save_model(create_model("mobilenet"), tmp / "model.safetensors")  # 160 px: embedding takes seconds
    return tmp


@pytest.mark.parametrize("moment", ["while the libraries load", "half a second into loading", "as the loader starts"])
def test_ctrl_c_at_any_moment_of_start_up_exits_130_with_one_line(eval_world, tmp_path, moment):
    report = tmp_path / "report.json"
    world = eval_world
    args = [*FACECLI, "eval", "-c", str(world / "model.safetensors"), "--pairs", str(world / "pairs.txt"),
            "--root", str(world / "faces"), "--device", "cpu", "--workers", "1", "--report", str(report)]  # fmt: skip

    def restore() -> None:  # the default disposition and an unblocked signal, as a shell gives
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    proc = subprocess.Popen(args, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=restore)  # fmt: skip
    if moment in ("while the libraries load", "half a second into loading"):
        # not a fixed wait: Python's own start-up, before facecli runs, took over 0.5 s in a loaded test run
        # (a plain 0.5 s from launch once landed there, under a full test run: no handler yet, no line)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline and not _loading_torch(proc.pid):
            time.sleep(0.005)
        if moment == "half a second into loading":
            time.sleep(0.5)  # the moment itself: later in the loading, wherever it has got to
    else:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline and not _children(proc.pid):
            time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    _, err = proc.communicate(timeout=60)
    # a shell shows 130 for both an exit(130) and a death by SIGINT (-2 here), which Python itself chooses
    # at exit now and then after a handled Ctrl-C; the user sees the same status and one line either way
    assert proc.returncode in (130, -signal.SIGINT), (
        f"exit {proc.returncode} {time.monotonic() - sent:.1f}s after SIGINT\n{err}"
    )
    assert "interrupted" in err and "Traceback" not in err, err
    assert not report.exists() and not list(tmp_path.glob("*.tmp"))
