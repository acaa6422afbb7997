"""Every command checks its options before any work: a bad option or combination fails at once, naming it,
with nothing read past the pairs/list files, nothing embedded or trained, and nothing written."""

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import facecli.align.folder  # noqa: F401  (imported up front: the clock below times the checks, not imports)
import facecli.embed.files as embed_files
import facecli.exporting  # noqa: F401
import facecli.identification  # noqa: F401
import facecli.training.setup as training_setup
from facecli.checkpoint import save_model
from facecli.cli import app
from facecli.data.annotation import annotate
from facecli.data.synth import synth
from facecli.models import create_model

runner = CliRunner()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("options")
    synth(tmp / "faces", identities=4, images=3, size=32, seed=8)
    annotate(tmp / "faces", out_dir=tmp, pairs=8, folds=2, pairs_out=tmp / "pairs.txt")
    save_model(create_model("mobilenet", input_size=32, embedding_size=8).eval(), tmp / "m.safetensors")
    (tmp / "scores.csv").write_text("score,label\n0.9,1\n0.1,0\n")
    return tmp


def _cases(w, out):
    model, pairs, root = str(w / "m.safetensors"), str(w / "pairs.txt"), str(w / "faces")
    scoring = ["-c", model, "--pairs", pairs, "--root", root]
    training = ["train", "--data", str(w / "cls_train.txt"), "--run-dir", str(out / "run")]
    return {
        "eval metric": (["eval", *scoring, "--metric", "cosin", "--report", str(out / "r.json")], "unknown metric"),
        "eval format": (["eval", *scoring, "--format", "tsv"], "unknown pairs format"),
        "eval backend": (["eval", *scoring, "--backend", "tensorrt"], "unknown backend"),
        "eval device": (["eval", *scoring, "--device", "tpu"], "unknown device"),
        "eval precision": (["eval", *scoring, "--precision", "fp8"], "unknown precision"),
        "eval scores twice": (
            ["eval", "--from-scores", str(w / "scores.csv"), "--scores", str(out / "s.csv")],
            "--scores writes the scores of embedded pairs",
        ),
        "eval scores and model": (["eval", "--from-scores", str(w / "scores.csv"), "-c", model], "--from-scores"),
        "sweep select": (["sweep", *scoring, "--select", "bogus", "--out", str(out / "s.csv")], "unknown --select"),
        "sweep far": (["sweep", *scoring, "--select", "far=often"], "expected far=<number>"),
        "sweep far range": (["sweep", *scoring, "--select", "far=2"], "the FAR must be in"),
        "sweep step": (["sweep", *scoring, "--step", "-0.1"], "--step must be a number > 0, got -0.1"),
        "sweep range": (["sweep", *scoring, "--start", "1", "--stop", "0"], "below --start"),
        "predict uncalibrated": (["predict", *scoring, "--out", str(out / "sub.csv")], "no calibrated threshold"),
        "predict metric": (["predict", *scoring, "--out", str(out / "sub.csv"), "--metric", "l2"], "unknown metric"),
        "train loss option": ([*training, "--loss", "arcface", "--mining", "semi_hard"], "--mining applies to triplet"),
        "train margins": ([*training, "--loss", "arcface", "--margins", "1,0.5,0"], "--margins applies to combined"),
        "train k": ([*training, "--loss", "softmax", "--k", "2"], "--k applies to the pk sampler"),
        "train lr steps": ([*training, "--lr-steps", "3"], "--lr-steps applies to --scheduler step"),
        "train optimizer": ([*training, "--optimizer", "lion"], "unknown optimizer"),
        "train aug": ([*training, "--aug", "heavy"], "unknown augmentation"),
        "train backbone": ([*training, "--backbone", "resnet"], "unknown backbone"),
        "train val root": ([*training, "--val-root", root], "--val-root applies to --val-pairs"),
        "index template": (["index", root, "-c", model, "--out", str(out / "g"), "--template", "median"], "template"),
        "index type": (["index", root, "-c", model, "--out", str(out / "g"), "--index-type", "hnsw"], "index type"),
        "index build and add": (["index", root, "-c", model, "--out", str(out / "g"), "--add", root], "not both"),
        "identify backend": (
            ["identify", root, "--index", str(out / "g"), "--out", str(out / "i.csv"), "--backend", "x"],
            "unknown backend",
        ),
        "export format": (["export", "-c", model, "--out", str(out / "m.x"), "--format", "tflite"], "export format"),
        "export fp16": (
            ["export", "-c", model, "--out", str(out / "m.pt"), "--format", "torchscript", "--fp16"],
            "--fp16",
        ),
        "align template": (["align", root, str(out / "aligned"), "--align-template", "dlib"], "unknown template"),
    }


CASES = sorted(_cases(Path("world"), Path("out")))  # the names; each test builds its own paths


@pytest.mark.parametrize("case", CASES)
def test_a_bad_option_fails_at_once_and_writes_nothing(world, tmp_path, monkeypatch, case):
    def no_work(*args, **kwargs):
        pytest.fail("work started before the options were checked")

    monkeypatch.setattr(embed_files, "embed_images", no_work)
    monkeypatch.setattr(training_setup, "read_training_set", no_work)
    args, message = _cases(world, tmp_path)[case]
    start = time.perf_counter()
    result = runner.invoke(app, args)
    elapsed = time.perf_counter() - start
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert elapsed < 1.0, f"took {elapsed:.2f} s to refuse"
    assert list(tmp_path.iterdir()) == [], "wrote output"
