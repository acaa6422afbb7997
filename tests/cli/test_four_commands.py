"""The four lines facecli's users describe it by run as written, in a folder holding datasets/, lfw/ and
lfw_pair.txt: each default is found in the working folder and printed with where it came from."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from facecli.cli import app
from facecli.data.annotation import annotate
from facecli.data.synth import synth

runner = CliRunner()


def _run(line: str):
    result = runner.invoke(app, line.split()[1:])  # the line as typed, less "facecli"
    return result


@pytest.fixture
def folder(tmp_path, monkeypatch):
    synth(tmp_path / "datasets", identities=24, images=4, size=32, seed=1)
    synth(tmp_path / "lfw", identities=8, images=4, size=32, seed=2)
    annotate(tmp_path / "lfw", out_dir=tmp_path / "lfw_lists", pairs=40, folds=2,
             pairs_out=tmp_path / "lfw_pair.txt")  # fmt: skip
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.slow
def test_the_four_commands_run_as_written(folder):
    annotated = _run("facecli annotate datasets/")
    assert annotated.exit_code == 0, annotated.output
    trained = _run("facecli train --loss triplet --backbone mobilenet")
    assert trained.exit_code == 0, trained.output
    assert "data: cls_train.txt (found in the working folder; --data to choose)" in trained.output
    assert "run folder: runs/train (a new one under runs/; --run-dir to choose)" in trained.output
    evaluated = _run("facecli eval --pairs lfw_pair.txt")
    assert evaluated.exit_code == 0, evaluated.output
    assert "model: runs/train/best.safetensors (the newest run's best model" in evaluated.output
    assert "root: lfw (where lfw_pair.txt's image names resolve" in evaluated.output
    predicted = _run("facecli predict --out sub.csv")
    assert predicted.exit_code == 0, predicted.output
    assert "pairs: lfw_pair.txt (found in the working folder" in predicted.output
    sub = pd.read_csv(folder / "sub.csv")
    assert len(sub) == 40 and set(sub["prediction"]) <= {0, 1}  # decided with the run's calibrated threshold
    again = _run("facecli train --loss triplet --backbone mobilenet --epochs 1")
    assert again.exit_code == 0 and "run folder: runs/train2" in again.output
    assert (folder / "runs" / "train" / "best.safetensors").is_file()  # the first run is untouched


def _assert_one_line_error(result, text):
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and text in errors[0], result.output


def test_without_cls_train_txt_train_names_the_file_and_the_command_that_writes_it(folder):
    _assert_one_line_error(_run("facecli train --loss triplet"), "no cls_train.txt in the working folder")
    assert not (folder / "runs").exists()


def test_without_runs_eval_says_there_is_no_run(folder):
    _assert_one_line_error(_run("facecli eval --pairs lfw_pair.txt"), "there is no run under runs/")


def test_two_candidate_pairs_files_are_named(folder):
    (folder / "pairs.txt").write_text((folder / "lfw_pair.txt").read_text())
    _assert_one_line_error(_run("facecli predict --out sub.csv -c missing.safetensors"), "2: lfw_pair.txt, pairs.txt")


def test_a_pairs_file_whose_names_resolve_nowhere_lists_what_was_tried(folder):
    (folder / "elsewhere").mkdir()
    (folder / "elsewhere" / "p.txt").write_text((folder / "lfw_pair.txt").read_text())
    result = _run("facecli eval --pairs elsewhere/p.txt -c any.safetensors")
    _assert_one_line_error(result, "resolve under none of elsewhere (")
    assert "elsewhere/lfw" not in result.output and ". (" in result.output  # beside the file, and here


def test_resume_without_a_folder_continues_the_newest_unfinished_run(folder):
    import os
    import signal

    from facecli.cli.app import resume_without_folder
    from facecli.training import TrainOptions, train

    assert resume_without_folder(["train", "--resume"]) == ["train", "--resume", "@newest"]
    assert resume_without_folder(["train", "--resume", "--epochs", "3"])[:3] == ["train", "--resume", "@newest"]
    assert resume_without_folder(["train", "--resume", "runs/x"]) == ["train", "--resume", "runs/x"]
    _assert_one_line_error(_run("facecli train --resume @newest"), "there is no run under runs/ to continue")

    def ctrl_c_at_step_2(step, loss):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return loss

    options = dict(data=folder / "datasets", backbone="timm/resnet10t", img_size=32, epochs=2, batch_size=16, workers=0,
                   device="cpu", val_holdout=0)  # fmt: skip
    train(TrainOptions(run_dir=folder / "runs" / "train", **options))
    stopped = train(TrainOptions(run_dir=folder / "runs" / "train2", **options), step_hook=ctrl_c_at_step_2)
    assert stopped.stopped == "interrupted"
    resumed = _run("facecli train --resume @newest")  # what a bare --resume becomes
    assert resumed.exit_code == 0, resumed.output
    assert "resume: runs/train2 (the newest run, unfinished" in resumed.output
    _assert_one_line_error(_run("facecli train --resume @newest"), "runs/train2, is finished (epoch 2 of 2)")
