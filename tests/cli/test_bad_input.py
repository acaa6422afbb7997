"""Every command on bad input: one clear line naming the culprit, exit 2, no traceback, nothing half-written.

Each case builds its bad input in a fresh folder beside a small good dataset and checkpoint, runs the
CLI, and checks the error line and that no output (or temporary file) was left behind. Inputs the tool
accepts (16-bit PNG, CMYK JPEG, Windows line endings, BOM) are checked to work instead.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from facecli.checkpoint import CONFIG_KEY, read_config, save_model
from facecli.cli import app
from facecli.data.synth import synth
from facecli.models import create_model

runner = CliRunner()


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """faces/ (3 identities x 3 images, 32 px), a pairs file over them and a small checkpoint."""
    tmp = tmp_path_factory.mktemp("bad_input")
    synth(tmp / "faces", identities=3, images=3, size=32, seed=7)
    save_model(create_model("mobilenet", input_size=32, embedding_size=8), tmp / "model.safetensors")
    return tmp


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (no pixel data worth decoding)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def _jpeg(seed: int = 0) -> bytes:
    image = np.random.default_rng(seed).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


BAD_IMAGES: dict[str, tuple[Callable[[], bytes], str]] = {
    "truncated.jpg": (lambda: _jpeg()[: len(_jpeg()) // 2], "truncated"),
    "zero.jpg": (lambda: b"", "empty file"),
    "text.jpg": (lambda: b"this is not an image\n", "not a readable image"),
    "tiny.png": (lambda: cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))[1].tobytes(), "too small"),
    "bomb.png": (lambda: _png_header(20000, 20000), "decompression bomb"),
}


def _pairs_with(base: Path, work: Path, image: str) -> Path:
    """A two-pair LFW-style paths file where one pair uses `image` (copied next to the good faces)."""
    left = sorted((base / "faces").rglob("*.jpg"))[0].relative_to(base / "faces")
    pairs = work / "pairs.txt"
    pairs.write_text(f"{left} {left} 1\n{left} {image} 0\n")
    return pairs


def _eval_args(base: Path, pairs: Path, root: Path, work: Path) -> list[str]:
    return ["eval", "-c", str(base / "model.safetensors"), "--pairs", str(pairs), "--root", str(root),
            "--device", "cpu", "--workers", "0", "--report", str(work / "report.json"),
            "--scores", str(work / "scores.csv")]  # fmt: skip


def _assert_clean_failure(result, expect: str, work: Path, outputs: tuple[str, ...]) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.output  # progress lines may come before it
    assert expect in errors[0], errors[0]
    for name in outputs:
        assert not (work / name).exists(), f"{name} was written"
    assert not list(work.rglob("*.tmp")), "a temporary file was left behind"


@pytest.mark.parametrize("name", list(BAD_IMAGES))
def test_bad_image_in_a_pairs_file_is_named(base, tmp_path, name):
    make, reason = BAD_IMAGES[name]
    root = tmp_path / "root"
    shutil.copytree(base / "faces", root)
    (root / name).write_bytes(make())
    pairs = _pairs_with(base, tmp_path, name)
    result = runner.invoke(app, [*_eval_args(base, pairs, root, tmp_path), "--folds", "2"])
    _assert_clean_failure(result, reason, tmp_path, ("report.json", "scores.csv"))
    assert name in result.output


@pytest.mark.parametrize("name", list(BAD_IMAGES))
def test_bad_image_in_a_training_folder_is_left_out_or_replaced(base, tmp_path, name):
    """Images the header check catches are left out up front with a note; one that fails only when decoded
    (a truncated JPEG) is replaced during the run and listed in bad_images.txt (tests/training/test_bad_images.py
    covers the limit)."""
    make, reason = BAD_IMAGES[name]
    data = tmp_path / "data"
    shutil.copytree(base / "faces", data)
    target = next(p for p in sorted(data.iterdir()) if p.is_dir())
    (target / name).write_bytes(make())
    args = ["train", "--data", str(data), "--run-dir", str(tmp_path / "run"), "--backbone", "mobilenet",
            "--img-size", "32", "--embedding-size", "8", "--loss", "softmax", "--epochs", "1",
            "--batch-size", "8", "--sampler", "random", "--workers", "0", "--device", "cpu",
            "--max-bad-fraction", "0.5"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "last.safetensors").is_file()
    if name == "truncated.jpg":
        listed, why = (tmp_path / "run" / "bad_images.txt").read_text().rstrip("\n").split("\t")
        assert listed == str(target / name) and reason in why
    else:
        output = "".join(result.output.split())  # the note may be wrapped anywhere
        note = output[output.index("leftout1unusableimage(s),first") :]
        assert note.startswith("".join(f"left out 1 unusable image(s), first {target / name}:".split()))
        assert "".join(reason.split()) in note


def _write_cmyk_red(path: Path) -> None:
    Image.new("RGB", (32, 32), (220, 30, 30)).convert("CMYK").save(path, "JPEG", quality=95)


def _write_png16(path: Path) -> None:
    image = np.zeros((32, 32, 3), np.uint16)
    image[..., 2] = 56000  # red in OpenCV's BGR order
    cv2.imwrite(str(path), image)


@pytest.mark.parametrize("write", [_write_cmyk_red, _write_png16], ids=["cmyk_jpeg", "png_16bit"])
def test_unusual_encodings_decode_to_the_right_colours(tmp_path, write):
    from facecli.data.images import read_image

    path = tmp_path / ("image.jpg" if write is _write_cmyk_red else "image.png")
    write(path)
    red, green, blue = read_image(path).reshape(-1, 3).mean(0)
    assert red > 180 and green < 80 and blue < 80


def test_non_utf8_file_name_is_reported_and_left_out(base, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(base / "faces", data)
    person = next(p for p in sorted(data.iterdir()) if p.is_dir())
    odd = os.fsencode(person) + b"/caf\xe9.jpg"  # Latin-1 bytes: not valid UTF-8
    with open(odd, "wb") as handle:
        handle.write(_jpeg(1))
    result = runner.invoke(app, ["annotate", str(data), "--out", str(tmp_path / "ann"), "--check"])
    assert result.exit_code == 0, result.output
    assert "caf\ufffd.jpg: file name is not valid UTF-8" in result.output
    assert len((tmp_path / "ann" / "cls_train.txt").read_text().splitlines()) == 9  # the other images


# ---- data sets -------------------------------------------------------------------------------------


def test_empty_data_set(tmp_path):
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["annotate", str(tmp_path / "empty"), "--out", str(tmp_path / "out")])
    _assert_clean_failure(result, "no identity folders found", tmp_path, ("out/cls_train.txt",))
    args = ["train", "--data", str(tmp_path / "empty"), "--run-dir", str(tmp_path / "run"), "--device", "cpu"]
    _assert_clean_failure(runner.invoke(app, args), "no identity folders found", tmp_path, ("run/config.json",))


def test_one_identity_only(base, tmp_path):
    data = tmp_path / "one"
    person = next(p for p in sorted((base / "faces").iterdir()) if p.is_dir())
    shutil.copytree(person, data / person.name)
    args = ["train", "--data", str(data), "--run-dir", str(tmp_path / "run"), "--device", "cpu"]
    _assert_clean_failure(runner.invoke(app, args), "needs at least 2 identities", tmp_path, ("run/config.json",))
    args = ["annotate", str(data), "--out", str(tmp_path / "ann"), "--num-pairs", "40", "--pairs-out",
            str(tmp_path / "ann" / "pairs.txt")]  # fmt: skip
    _assert_clean_failure(runner.invoke(app, args), "identities", tmp_path, ("ann/pairs.txt",))


# ---- pairs files ------------------------------------------------------------------------------------

PAIRS_CASES: dict[str, tuple[str, str]] = {
    "missing image": ("{a} nobody/nobody_0001.jpg 0\n", "not found"),
    "wrong field count": ("{a} {b}\n{a} {b} 1 extra\n", "line 1"),
    "label other than 0/1": ("{a} {b} 2\n", "line 1"),
    "escapes root": ("{a} ../outside.jpg 0\n", "outside"),
    "csv without the columns": ("photo,other,match\n{a},{b},1\n", "columns"),
}


@pytest.mark.parametrize("case", list(PAIRS_CASES))
def test_bad_pairs_file(base, tmp_path, case):
    text, expect = PAIRS_CASES[case]
    a, b = (p.relative_to(base / "faces") for p in sorted((base / "faces").rglob("*.jpg"))[:2])
    pairs = tmp_path / ("pairs.csv" if "csv" in case else "pairs.txt")
    pairs.write_text(text.format(a=a, b=b))
    result = runner.invoke(app, _eval_args(base, pairs, base / "faces", tmp_path))
    _assert_clean_failure(result, expect, tmp_path, ("report.json", "scores.csv"))
    assert pairs.name in result.output or expect == "not found"


def test_escaping_root_is_allowed_when_asked(base, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(base / "faces", root / "faces")
    a, b = (p.relative_to(root / "faces") for p in sorted((root / "faces").rglob("*.jpg"))[::8][:2])
    (root / "other").mkdir()
    shutil.copy(root / "faces" / a, root / "other" / "a.jpg")
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(f"../other/a.jpg {a} 1\n{a} {b} 0\n")
    args = _eval_args(base, pairs, root / "faces", tmp_path)[:-4] + ["--folds", "2"]
    _assert_clean_failure(runner.invoke(app, args), "outside", tmp_path, ())
    result = runner.invoke(app, [*args, "--allow-outside-root"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("encoding", ["crlf", "bom"])
def test_windows_line_endings_and_bom_are_accepted(base, tmp_path, encoding):
    faces = sorted((base / "faces").rglob("*.jpg"))
    rel = [p.relative_to(base / "faces") for p in faces]
    lines = [f"{rel[i]} {rel[i + 1]} {int(rel[i].parent == rel[i + 1].parent)}" for i in range(len(rel) - 1)]
    text = ("\r\n" if encoding == "crlf" else "\n").join(lines) + "\n"
    (tmp_path / "pairs.txt").write_bytes(("\ufeff" if encoding == "bom" else "").encode() + text.encode())
    args = _eval_args(base, tmp_path / "pairs.txt", base / "faces", tmp_path) + ["--folds", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report.json").is_file()


# ---- checkpoints and weight files --------------------------------------------------------------------


def _other_architecture(base: Path, path: Path) -> None:
    """vgg16 weights under the good checkpoint's config, which claims mobilenet."""
    config = json.dumps(read_config(base / "model.safetensors").to_dict())
    weights = create_model("vgg16", input_size=32, embedding_size=8).state_dict()
    save_file({k: v.contiguous() for k, v in weights.items()}, str(path), metadata={CONFIG_KEY: config})


def _truncated(base: Path, path: Path) -> None:
    data = (base / "model.safetensors").read_bytes()
    path.write_bytes(data[: len(data) // 2])


class _RunsCode:
    """Unpickling this creates `marker`: the evidence that loading ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.marker}",))


def _marker(path: Path) -> Path:
    """Where the payload in `path` leaves its evidence: beside it, so parallel tests never share one."""
    return path.with_name(path.name + ".code_ran")


def _pickled(base: Path, path: Path) -> None:
    path.write_bytes(pickle.dumps({"state_dict": _RunsCode(_marker(path))}))


CHECKPOINT_CASES: dict[str, tuple[Callable[[Path, Path], None], str, str]] = {
    "another architecture": (_other_architecture, "model.safetensors", "do not fit backbone"),
    "truncated safetensors": (_truncated, "model.safetensors", "not a readable .safetensors"),
    "pickled .pth": (_pickled, "model.pth", "never unpickles"),
}


@pytest.mark.parametrize("case", list(CHECKPOINT_CASES))
@pytest.mark.parametrize("command", ["eval", "export"])
def test_bad_checkpoint(base, tmp_path, case, command):
    make, name, expect = CHECKPOINT_CASES[case]
    checkpoint = tmp_path / name
    make(base, checkpoint)
    a = sorted((base / "faces").rglob("*.jpg"))[0].relative_to(base / "faces")
    (tmp_path / "pairs.txt").write_text(f"{a} {a} 1\n{a} {a} 0\n")  # two pairs for --folds 2
    if command == "eval":
        args = [*_eval_args(base, tmp_path / "pairs.txt", base / "faces", tmp_path), "--folds", "2"]
        args[2] = str(checkpoint)
    else:
        args = ["export", "-c", str(checkpoint), "--format", "onnx", "--out", str(tmp_path / "model.onnx")]
    result = runner.invoke(app, args)
    _assert_clean_failure(result, expect, tmp_path, ("report.json", "scores.csv", "model.onnx"))
    assert name in result.output
    assert not _marker(checkpoint).exists(), "unpickling ran code"


def test_pickled_weights_are_refused_by_import(tmp_path):
    _pickled(tmp_path, tmp_path / "weights.pth")
    args = [
        "import",
        str(tmp_path / "weights.pth"),
        "--arch",
        "facenet-mobilenet",
        "--out",
        str(tmp_path / "m.safetensors"),
    ]
    _assert_clean_failure(runner.invoke(app, args), "can run code", tmp_path, ("m.safetensors",))
    assert not _marker(tmp_path / "weights.pth").exists()


# ---- nothing is overwritten without --force, and the check comes before any work ---------------------

# Each command is given an existing output and an input that does not exist: the refusal to overwrite
# must come first, so no input was read and no work was done.
OVERWRITE_CASES: dict[str, tuple[str, list[str]]] = {
    "synth": ("faces/keep.jpg", ["synth", "{w}/faces", "--identities", "2"]),
    "annotate": ("cls_train.txt", ["annotate", "{missing}", "--out", "{w}"]),
    "eval": ("report.json", ["eval", "-c", "{missing}", "--pairs", "{missing}", "--report", "{w}/report.json"]),
    "predict": ("sub.csv", ["predict", "-c", "{missing}", "--pairs", "{missing}", "--out", "{w}/sub.csv"]),
    "sweep": ("sweep.csv", ["sweep", "-c", "{missing}", "--pairs", "{missing}", "--out", "{w}/sweep.csv"]),
    "export": ("m.onnx", ["export", "-c", "{missing}", "--format", "onnx", "--out", "{w}/m.onnx"]),
    "import": ("m.safetensors", ["import", "{missing}", "--arch", "facenet-mobilenet", "--out", "{w}/m.safetensors"]),
    "train": ("run/config.json", ["train", "--data", "{missing}", "--run-dir", "{w}/run"]),
    "index": ("g.index", ["index", "{missing}", "-c", "{missing}", "--out", "{w}/g.index"]),
    "identify": ("who.csv", ["identify", "{missing}", "--index", "{missing}", "--out", "{w}/who.csv"]),
    "eval-identify": (
        "cmc.png",
        ["eval-identify", "--index", "{missing}", "--probes", "{missing}", "--plot", "{w}/cmc.png"],
    ),
}


@pytest.mark.parametrize("command", list(OVERWRITE_CASES))
def test_existing_outputs_are_refused_before_any_work(tmp_path, command):
    existing, template = OVERWRITE_CASES[command]
    target = tmp_path / existing
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("precious\n")
    args = [a.format(w=tmp_path, missing=tmp_path / "does-not-exist") for a in template]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "--force" in result.output and "does-not-exist" not in result.output, result.output
    assert target.read_text() == "precious\n"
