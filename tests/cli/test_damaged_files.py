"""Every kind of file facecli writes, damaged four ways: a damaged cache is a warning and is rebuilt; a damaged
model, ONNX export, gallery index, training state or run config is one error line naming the file, exit 2."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from facecli.checkpoint import save_model
from facecli.cli import app
from facecli.data.annotation import annotate
from facecli.data.synth import synth
from facecli.models import create_model

runner = CliRunner()
CPU = ["--device", "cpu", "--workers", "0"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """faces/ with pairs.txt, a model and its ONNX export, a gallery index, a one-epoch run, an eval cache."""
    tmp = tmp_path_factory.mktemp("damaged")
    synth(tmp / "faces", identities=4, images=3, size=32, seed=9)
    annotate(tmp / "faces", out_dir=tmp, pairs=8, folds=2, pairs_out=tmp / "pairs.txt")
    save_model(create_model("mobilenet", input_size=32, embedding_size=8), tmp / "model.safetensors")
    commands = [
        ["export", "-c", str(tmp / "model.safetensors"), "--format", "onnx", "--out", str(tmp / "model.onnx")],
        ["index", str(tmp / "faces"), "-c", str(tmp / "model.safetensors"), "--out", str(tmp / "g.index"), *CPU],
        ["train", "--data", str(tmp / "cls_train.txt"), "--run-dir", str(tmp / "run"), "--backbone", "mobilenet",
         "--img-size", "32", "--embedding-size", "8", "--loss", "softmax", "--epochs", "1", "--batch-size", "6", *CPU],
        [*_eval(tmp, tmp), "--cache", str(tmp / "cache")],
    ]  # fmt: skip
    for args in commands:
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    return tmp


def _eval(world: Path, work: Path, checkpoint: str = "model.safetensors") -> list[str]:
    return ["eval", "-c", str(world / checkpoint), "--pairs", str(world / "pairs.txt"), "--root", str(world / "faces"),
            "--report", str(work / "report.json"), *CPU]  # fmt: skip


def _truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 16]) + data[middle + 16 :]


def _empty(data: bytes) -> bytes:
    return b""


def _wrong_type(data: bytes) -> bytes:
    return cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()


DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "truncated": _truncate, "bytes flipped": _flip, "zero-length": _empty, "another file type": _wrong_type,
}  # fmt: skip


def _copy(world: Path, tmp_path: Path) -> Path:
    work = tmp_path / "w"
    shutil.copytree(world, work, ignore=shutil.ignore_patterns("faces"))
    (work / "faces").symlink_to(world / "faces")
    for name in ("cls_train.txt", "pairs.txt"):
        (work / name).write_text((world / name).read_text().replace(str(world), str(work)))
    return work


FATAL: dict[str, tuple[str, Callable[[Path], list[str]]]] = {
    "model": ("model.safetensors", lambda w: _eval(w, w)),
    "ONNX export": ("model.onnx", lambda w: [*_eval(w, w, "model.onnx"), "--backend", "onnx"]),
    "gallery index": (
        "g.index",
        lambda w: ["identify", str(w / "faces"), "--index", str(w / "g.index"), "--out", str(w / "r.csv"), *CPU],
    ),
    "training state": ("run/last_state.pt", lambda w: ["train", "--resume", str(w / "run"), "--epochs", "2"]),
    "run config": ("run/config.json", lambda w: ["train", "--resume", str(w / "run"), "--epochs", "2"]),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("kind", list(FATAL))
def test_a_damaged_file_is_one_error_naming_it(world, tmp_path, kind, damage):
    name, command = FATAL[kind]
    work = _copy(world, tmp_path)
    (work / "report.json").unlink()
    target = work / name
    target.write_bytes(DAMAGE[damage](target.read_bytes()))
    result = runner.invoke(app, command(work))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and target.name in errors[0], result.output
    assert not (work / "report.json").exists() and not (work / "r.csv").exists()


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_cache_file_is_a_warning_and_is_rebuilt(world, tmp_path, damage):
    work = _copy(world, tmp_path)
    clean = json.loads((work / "report.json").read_text())
    (shard,) = (work / "cache").rglob("*.npz")
    shard.write_bytes(DAMAGE[damage](shard.read_bytes()))
    (work / "report.json").unlink()
    result = runner.invoke(app, [*_eval(work, work), "--cache", str(work / "cache")])
    assert result.exit_code == 0, result.output
    output = "".join(result.output.split())  # the line may be wrapped anywhere
    assert "".join(f"warning: {shard}: damaged cache file ignored".split()) in output
    again = json.loads((work / "report.json").read_text())
    assert again["accuracy_mean"] == clean["accuracy_mean"] and again["auc"] == clean["auc"]
    (rebuilt,) = (work / "cache").rglob("*.npz")  # the damaged shard gone, the images' entries written again
    assert rebuilt != shard
    result = runner.invoke(app, [*_eval(work, work), "--cache", str(work / "cache"), "--force"])
    assert result.exit_code == 0 and "warning" not in result.output


@pytest.mark.parametrize("damage", ["truncated", "zero-length", "another file type"])
def test_a_damaged_bin_set_is_one_error_naming_it(world, tmp_path, damage):
    """(Bytes flipped inside an image of a .bin are not detectable: the format carries no checksum.)"""
    from facecli.data.bin_sets import write_bin

    images = [p.read_bytes() for p in sorted((world / "faces").rglob("*.jpg"))[:4]]
    target = tmp_path / "lfw.bin"
    write_bin(target, images, [True, False])
    target.write_bytes(DAMAGE[damage](target.read_bytes()))
    result = runner.invoke(
        app, ["eval", "-c", str(world / "model.safetensors"), "--bin", str(target), "--device", "cpu"]
    )
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "lfw.bin" in errors[0] and "Traceback" not in result.output
