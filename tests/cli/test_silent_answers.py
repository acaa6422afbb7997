"""What used to be a silent wrong answer is now one error line, exit 2, nothing written: numbers outside
their range (a negative --clip-grad flipped every gradient, --embedding-size 0 trained 512-d), a NaN
threshold (every pair "different"), and a model that outputs NaN (blamed on "missing images")."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from facecli.checkpoint import save_model
from facecli.cli import app
from facecli.data.synth import synth
from facecli.models import create_model

runner = CliRunner()


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("silent")
    synth(tmp / "faces", identities=3, images=3, size=32, seed=7)
    model = create_model("mobilenet", input_size=32, embedding_size=8).eval()
    save_model(model, tmp / "model.safetensors")
    with torch.no_grad():
        model.neck.fc.weight.fill_(float("nan"))
    save_model(model, tmp / "nan.safetensors")
    faces = [f.relative_to(tmp / "faces") for f in sorted((tmp / "faces").rglob("*.jpg"))]
    pairs = [(faces[k % 9], faces[(k + 1) % 9]) for k in range(10)]  # enough for eval's 10 folds
    (tmp / "pairs.txt").write_text("".join(f"{a} {b} {int(a.parent == b.parent)}\n" for a, b in pairs))
    return tmp


def _one_error_line(result, expect: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expect in " ".join(result.output.split()), result.output


@pytest.mark.parametrize(
    ("option", "value", "expect"),
    [("--clip-grad", "-1", "--clip-grad must be a number > 0, got -1.0"),
     ("--embedding-size", "0", "--embedding-size must be an integer in [2, 65536], got 0"),
     ("--lr", "nan", "--lr must be a number >= 0, got nan"),
     ("--lr", "inf", "--lr must be a number >= 0, got inf"),
     ("--dropout", "1.5", "--dropout must be a number in [0, 1), got 1.5"),
     ("--img-size", "0", "--img-size must be an integer in [16, 4096], got 0")],
)  # fmt: skip
def test_train_refuses_a_number_out_of_range_before_making_the_run_folder(base, tmp_path, option, value, expect):
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(base / "faces"), "--run-dir", str(run), option, value])
    _one_error_line(result, expect)
    assert not run.exists()


def test_a_yaml_file_gets_the_same_check_naming_the_option(base, tmp_path):
    (tmp_path / "run.yaml").write_text("clip_grad: -1\n")
    args = ["train", "--data", str(base / "faces"), "--run-dir", str(tmp_path / "run"),
            "--config", str(tmp_path / "run.yaml")]  # fmt: skip
    _one_error_line(runner.invoke(app, args), "--clip-grad must be a number > 0, got -1")


def test_train_force_keeps_the_previous_run_when_an_option_is_invalid(base, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.safetensors").write_bytes(b"the only copy")
    args = ["train", "--data", str(base / "faces"), "--run-dir", str(run), "--force", "--lr", "inf"]
    _one_error_line(runner.invoke(app, args), "--lr must be a number >= 0, got inf")
    assert (run / "best.safetensors").read_bytes() == b"the only copy"


@pytest.mark.parametrize("value", ["nan", "2", "-1.5"])  # a cosine is in [-1, 1]: outside, every pair alike
@pytest.mark.parametrize("command", ["predict", "compare", "identify"])
def test_a_threshold_no_score_can_reach_is_refused(base, tmp_path, command, value):
    faces, model = base / "faces", str(base / "model.safetensors")
    one = str(sorted(faces.rglob("*.jpg"))[0])
    args = {
        "predict": ["predict", "-c", model, "--pairs", str(base / "pairs.txt"), "--root", str(faces),
                    "--out", str(tmp_path / "out.csv")],
        "compare": ["compare", one, one, "-c", model],
        "identify": ["identify", one, "--index", str(tmp_path / "none.index"), "--out", str(tmp_path / "out.csv")],
    }[command]  # fmt: skip
    expect = f"--threshold (a cosine score) must be a number in [-1, 1], got {float(value)}"
    _one_error_line(runner.invoke(app, [*args, "--threshold", value]), expect)
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("command", ["eval", "predict"])
def test_a_model_that_outputs_nan_is_named_not_blamed_on_missing_images(base, tmp_path, command):
    args = [command, "-c", str(base / "nan.safetensors"), "--pairs", str(base / "pairs.txt"), "--root",
            str(base / "faces"), "--backend", "torch", "--workers", "0"]  # fmt: skip
    if command == "predict":
        args += ["--out", str(tmp_path / "out.csv"), "--threshold", "0.5"]
    _one_error_line(runner.invoke(app, args), "nan.safetensors: the model's embedding of")
    assert "is not finite (NaN or inf)" in runner.invoke(app, args).output
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize(
    ("args", "path"),
    [(["annotate", "{faces}", "--out", "{blocker}/sub"], "a_file/sub"),
     (["synth", "{blocker}/faces", "--identities", "2", "--images", "2"], "a_file/faces"),
     (["predict", "-c", "{model}", "--pairs", "{pairs}", "--root", "{faces}", "--threshold", "0.5",
       "--out", "{blocker}/sub.csv"], "a_file")],
)  # fmt: skip
def test_the_system_refusing_a_path_is_one_line_naming_it_and_what_to_do(base, tmp_path, args, path):
    blocker = tmp_path / "a_file"
    blocker.write_text("a file where a folder is meant")
    filled = [a.format(faces=base / "faces", blocker=blocker, model=base / "model.safetensors",
                       pairs=base / "pairs.txt") for a in args]  # fmt: skip
    result = runner.invoke(app, filled)
    _one_error_line(result, path)
    said = " ".join(result.output.split())
    assert any(
        text in said for text in ("a part of this path is a file, not a folder", "a file is there (a folder is meant",
                                  "a_file is a file, not a folder; choose another path")
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "expect"),
    [(["synth", "{tmp}/big", "--size", "100000"], "--size must be an integer in [16, 1024], got 100000"),
     (["sweep", "-c", "{model}", "--pairs", "{pairs}", "--root", "{faces}", "--step", "1e-9",
       "--start", "0", "--stop", "1"],
      "thresholds (at most 100000)"),
     (["sweep", "-c", "{model}", "--pairs", "{pairs}", "--root", "{faces}", "--start", "nan"],
      "--start must be a finite number, got nan")],
)  # fmt: skip
def test_requests_past_the_stated_size_limits_are_refused_before_any_memory_is_asked_for(base, tmp_path, args, expect):
    filled = [a.format(tmp=tmp_path, model=base / "model.safetensors", pairs=base / "pairs.txt", faces=base / "faces")
              for a in args]  # fmt: skip
    _one_error_line(runner.invoke(app, filled), expect)


@pytest.mark.parametrize(
    ("args", "expect"),
    [(["import", "{tmp}/text.pth", "--arch", "facenet-mobilenet", "--out", "{tmp}/m.safetensors"],
      "text.pth: not a PyTorch weights file"),
     (["export", "-c", "{model}", "--out", "{tmp}/o.onnx", "--opset", "7"], "--opset 7: ONNX export failed on"),
     (["export", "-c", "{model}", "--out", "{tmp}/o.onnx", "--opset", "-1"], "--opset must be an integer in [7, 30]"),
     (["sweep", "-c", "{model}", "--pairs", "{pairs}", "--root", "{faces}", "--plot", "{tmp}/x.unknown"],
      "x.unknown: a figure is written as png, pdf")],
)  # fmt: skip
def test_files_and_options_the_libraries_choke_on_are_one_line(base, tmp_path, args, expect):
    (tmp_path / "text.pth").write_text("hello\n")
    filled = [a.format(tmp=tmp_path, model=base / "model.safetensors", pairs=base / "pairs.txt",
                       faces=base / "faces") for a in args]  # fmt: skip
    _one_error_line(runner.invoke(app, filled), expect)
    assert not (tmp_path / "o.onnx").exists() and not (tmp_path / "m.safetensors").exists()


def test_a_pairs_csv_with_only_its_header_is_one_line_not_a_traceback(base, tmp_path):
    (tmp_path / "pairs.csv").write_text("path1,path2,label\n")
    args = ["eval", "-c", str(base / "model.safetensors"), "--pairs", str(tmp_path / "pairs.csv")]
    _one_error_line(runner.invoke(app, args), "pairs.csv: no pairs in this file")


def test_a_run_folder_given_as_the_model_names_its_model_file(base, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.safetensors").write_bytes((base / "model.safetensors").read_bytes())
    args = ["eval", "-c", str(run), "--pairs", str(base / "pairs.txt"), "--root", str(base / "faces")]
    _one_error_line(runner.invoke(app, args), f"a folder, not a model file; give one of its model files: {run}")


@pytest.mark.parametrize("command", ["annotate", "eval", "export", "train"])
def test_a_read_only_output_folder_is_one_line_before_any_work(base, tmp_path, monkeypatch, command):
    import os

    readonly = tmp_path / "ro"
    readonly.mkdir()
    real_access = os.access

    def access(path, mode, *args, **kwargs):  # what access(2) says in a read-only folder or filesystem
        if Path(path).resolve() == readonly.resolve() and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)  # the tests run as root, whom permissions do not stop
    model, faces, pairs = str(base / "model.safetensors"), str(base / "faces"), str(base / "pairs.txt")
    args = {
        "annotate": ["annotate", faces, "--out", str(readonly)],
        "eval": ["eval", "-c", model, "--pairs", pairs, "--root", faces, "--report", str(readonly / "r.json")],
        "export": ["export", "-c", model, "--out", str(readonly / "m.onnx")],
        "train": ["train", "--data", faces, "--run-dir", str(readonly / "run")],
    }[command]
    result = runner.invoke(app, args)
    _one_error_line(result, f"{readonly} is not writable; check its permissions or choose another path")
    assert list(readonly.iterdir()) == []
