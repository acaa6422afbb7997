"""Images that fail to decode during training: replaced, listed in bad_images.txt, fatal only past a limit,
and an interrupted run with them still resumes exactly."""

import os
import signal

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from facecli.cli import app
from facecli.data.annotation import annotate
from facecli.data.pairs import read_pairs, resolve_images
from facecli.data.synth import synth
from facecli.training import TrainOptions, resolve_options, train

runner = CliRunner()


@pytest.fixture
def data(tmp_path):
    """6 identities x 6 images listed in cls_train.txt (no header scan); one JPEG cut short, one empty file."""
    synth(tmp_path / "faces", identities=6, images=6, size=32, seed=5)
    annotate(tmp_path / "faces", out_dir=tmp_path)
    first, second = sorted((tmp_path / "faces").iterdir())[:2]
    cut = sorted(first.iterdir())[1]
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size * 8 // 10])
    empty = sorted(second.iterdir())[2]
    empty.write_bytes(b"")
    return tmp_path, {str(cut): "truncated JPEG", str(empty): "empty file"}


def _options(folder, run_dir, **kw) -> TrainOptions:
    values = dict(
        data=folder / "cls_train.txt", run_dir=run_dir, backbone="mobilenet", img_size=32, embedding_size=16,
        loss="triplet", epochs=2, batch_size=8, k=2, workers=0, device="cpu", lr=1e-3, max_bad_fraction=0.1,
    )  # fmt: skip
    return TrainOptions(**(values | kw))


def _listed(run_dir) -> dict[str, str]:
    lines = (run_dir / "bad_images.txt").read_text().splitlines()
    return dict(line.split("\t", 1) for line in lines)


def _same_weights(a, b) -> bool:
    a, b = load_file(str(a / "last.safetensors")), load_file(str(b / "last.safetensors"))
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_bad_images_are_replaced_listed_and_the_run_finishes(data):
    folder, bad = data
    result = train(_options(folder, folder / "run", workers=1))  # decoded in a loader worker
    assert result.stopped == "finished" and result.steps == 2 * (36 // 8)
    listed = _listed(folder / "run")
    assert listed.keys() == bad.keys()
    assert all(bad[path] in reason for path, reason in listed.items())
    assert result.bad_images == 2
    noted = [note for note in result.notes if "replaced by another image of its identity" in note]
    assert len(noted) == 1 and "bad_images.txt" in noted[0]  # noted once


def test_an_interrupted_run_with_bad_images_resumes_to_the_same_weights(data):
    folder, _ = data
    train(_options(folder, folder / "straight", epochs=3))

    def ctrl_c_mid_second_epoch(step: int, loss: torch.Tensor) -> torch.Tensor:
        if step == 7:  # what Ctrl-C does, delivered to this process
            os.kill(os.getpid(), signal.SIGINT)
        return loss

    assert train(_options(folder, folder / "cut", epochs=3), step_hook=ctrl_c_mid_second_epoch).stopped == "interrupted"
    result = train(resolve_options({}, resume=folder / "cut"), resume=True)
    assert result.stopped == "finished" and result.bad_images == 2
    assert _same_weights(folder / "straight", folder / "cut")
    assert _listed(folder / "cut") == _listed(folder / "straight")


def test_past_the_limit_the_run_stops_cleanly_and_resumes_exactly_with_a_higher_limit(data):
    folder, bad = data
    common = ["--backbone", "mobilenet", "--img-size", "32", "--embedding-size", "16", "--loss", "triplet",
              "--epochs", "2", "--batch-size", "8", "--k", "2", "--workers", "0", "--device", "cpu",
              "--lr", "1e-3"]  # fmt: skip
    run = folder / "run"
    stopped = runner.invoke(app, ["train", "--data", str(folder / "cls_train.txt"), "--run-dir", str(run), *common])
    assert stopped.exit_code == 2, stopped.output
    output = " ".join(stopped.output.split())
    assert "more than --max-bad-fraction 0.01" in output and f"facecli train --resume {run}" in output
    assert any(path in "".join(stopped.output.split()) for path in bad)
    assert (run / "last_state.pt").is_file() and _listed(run).keys() <= bad.keys()
    again = runner.invoke(app, ["train", "--resume", str(run)])
    assert again.exit_code == 2  # nothing changed: the same stop
    resumed = runner.invoke(app, ["train", "--resume", str(run), "--max-bad-fraction", "0.2"])
    assert resumed.exit_code == 0, resumed.output
    assert "failed to decode" in resumed.output
    train(_options(folder, folder / "straight", max_bad_fraction=0.2))
    assert _same_weights(folder / "straight", run)


def test_an_image_spoiled_or_deleted_while_the_run_goes_on_is_replaced(tmp_path):
    """At the end of the first epoch (a step hook, not a wait) one image becomes an empty file and another
    is deleted; the decoded-image cache notices both, and the run goes on without them."""
    synth(tmp_path / "faces", identities=6, images=6, size=32, seed=6)
    annotate(tmp_path / "faces", out_dir=tmp_path)
    spoiled, deleted = sorted((tmp_path / "faces").rglob("*.jpg"))[3:5]
    steps_per_epoch = 36 // 6

    def spoil_after_first_epoch(step, loss):
        if step == steps_per_epoch:
            spoiled.write_bytes(b"")
            deleted.unlink()
        return loss

    options = _options(tmp_path, tmp_path / "run", loss="softmax", k=None, batch_size=6, epochs=3, embedding_size=8)
    result = train(options, step_hook=spoil_after_first_epoch)
    assert result.stopped == "finished" and result.steps == 3 * steps_per_epoch
    listed = _listed(tmp_path / "run")
    assert listed.keys() == {str(spoiled), str(deleted)}
    assert "empty file" in listed[str(spoiled)] and "cannot read" in listed[str(deleted)]


def test_a_validation_image_that_fails_to_decode_leaves_its_pairs_out_of_the_score(tmp_path):
    synth(tmp_path / "faces", identities=6, images=4, size=32, seed=7)
    annotate(tmp_path / "faces", out_dir=tmp_path, holdout=2, pairs=12, folds=2, pairs_out=tmp_path / "pairs.txt")
    pairs = read_pairs(tmp_path / "pairs.txt")
    cut = resolve_images(pairs, tmp_path / "faces")[pairs.left[0]]
    cut.write_bytes(cut.read_bytes()[:-200])  # passes the header check, fails to decode
    validation = dict(val_pairs=tmp_path / "pairs.txt", val_root=tmp_path / "faces")
    result = train(_options(tmp_path, tmp_path / "run", epochs=1, **validation))
    assert result.stopped == "finished" and result.last["val_accuracy"] is not None
    noted = [note for note in result.notes if note.startswith("validation: 1 image(s) failed to decode")]
    assert len(noted) == 1 and str(cut) in noted[0]
