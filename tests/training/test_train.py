"""`facecli train` on tiny synthetic data: every loss, run files, exact resume, interruption, NaN, options."""

import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from facecli.checkpoint import load, read_config
from facecli.cli import app
from facecli.data.annotation import annotate
from facecli.errors import FaceCliError
from facecli.models import create_model
from facecli.registry import LOSSES
from facecli.training import TrainOptions, resolve_options, train
from facecli.training.resume_file import load_training_state
from facecli.training.state import SMOOTHING

runner = CliRunner()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """8 identities x 6 images of 32 px; 2 held out for validation pairs."""
    from facecli.data.synth import synth

    tmp = tmp_path_factory.mktemp("train")
    synth(tmp / "faces", identities=8, images=6, size=32, seed=3)
    annotate(tmp / "faces", out_dir=tmp, holdout=2, pairs=20, folds=2, pairs_out=tmp / "pairs.txt")
    return tmp


def _options(folder, run_dir, **kw) -> TrainOptions:
    values = dict(
        data=folder / "cls_train.txt",
        run_dir=run_dir,
        backbone="mobilenet",
        img_size=32,
        embedding_size=16,
        loss="triplet",
        epochs=1,
        batch_size=8,
        k=2,
        workers=0,
        device="cpu",
        lr=1e-3,
    )
    values.update(kw)
    options = TrainOptions(**values)
    return options if options.sampler_kind() == "pk" else TrainOptions(**{**values, "k": None})  # --k is for P x K


def _weights(path):
    return load_file(str(path))


def _parameters(weights: dict) -> dict:
    """The trainable parameters among a model's saved tensors (BatchNorm statistics change without a step)."""
    names = {name for name, _ in create_model("mobilenet", input_size=32, embedding_size=16).named_parameters()}
    return {k: v for k, v in weights.items() if k in names}


def test_triplet_run_writes_every_file_and_a_loadable_model(data, tmp_path):
    run = tmp_path / "run"
    result = train(
        _options(data, run, epochs=2, val_pairs=data / "pairs.txt", val_root=data / "faces", tensorboard=True)
    )
    assert result.stopped == "finished" and result.epochs_done == 2 and result.steps == 2 * (36 // 8)
    for name in ("config.json", "classes.txt", "metrics.csv", "last_state.pt", "last.safetensors", "best.safetensors"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics["epoch"]) == [1, 2]
    assert metrics["val_accuracy"].between(0, 1).all() and metrics["val_auc"].between(0, 1).all()
    smoothed = metrics["val_auc"].rolling(SMOOTHING, min_periods=1).mean()  # the rule: ties to the later epoch
    assert result.best_epoch == int(metrics["epoch"][smoothed == smoothed.max()].iloc[-1])
    config = read_config(run / "best.safetensors")
    assert (config.loss, config.num_classes, config.input_size, config.embedding_size) == ("triplet", 6, (32, 32), 16)
    model = load(run / "last.safetensors")
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 16)
    saved = json.loads((run / "config.json").read_text())
    assert saved["loss"] == "triplet" and saved["epochs"] == 2


@pytest.mark.parametrize("loss", sorted(LOSSES.names()))
def test_every_registered_loss_trains_and_changes_the_weights(data, tmp_path, loss):
    run = tmp_path / loss
    result = train(_options(data, run, loss=loss, aug="strong"))
    assert np.isfinite(result.last["loss"])
    state = load_training_state(run / "last_state.pt")
    torch.manual_seed(0)  # the run's seed: the same initial weights
    fresh = create_model("mobilenet", input_size=32, embedding_size=16).state_dict()
    changed = [k for k, v in _parameters(state["model"]).items() if not torch.equal(v, fresh[k])]
    assert changed, "no optimizer step changed a parameter"


@pytest.mark.parametrize(
    ("loss", "extra"),
    [
        ("arcface", {}),
        ("adaface", {"sample_rate": 0.5}),  # running norm statistics, Partial FC sampling
        ("curricularface", {}),  # its t
        ("subcenter_arcface", {"sample_rate": 0.5}),  # K rows per class under Partial FC
        ("magface", {}),
    ],
)
def test_one_epoch_then_resume_equals_two_epochs(data, tmp_path, loss, extra):
    common = dict(scheduler="step", lr_steps=[1], warmup_epochs=0.5, aug="strong", loss=loss, sampler="pk", **extra)
    train(_options(data, tmp_path / "straight", epochs=2, **common))
    train(_options(data, tmp_path / "halves", epochs=1, **common))
    after_one = _parameters(_weights(tmp_path / "halves" / "last.safetensors"))
    resumed = resolve_options({"epochs": 2, "run_dir": tmp_path / "halves"}, resume=tmp_path / "halves")
    result = train(resumed, resume=True)
    assert result.epochs_done == 2
    a, b = _weights(tmp_path / "straight" / "last.safetensors"), _weights(tmp_path / "halves" / "last.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the resumed epoch took optimizer steps (its parameters moved), and the same ones as the straight run
    moved = [k for k, v in _parameters(b).items() if not torch.equal(v, after_one[k])]
    assert len(moved) == len(after_one) and all(torch.equal(a[k], b[k]) for k in _parameters(a))
    loss_a = load_training_state(tmp_path / "straight" / "last_state.pt")["loss"]
    loss_b = load_training_state(tmp_path / "halves" / "last_state.pt")["loss"]
    assert all(torch.equal(loss_a[k], loss_b[k]) for k in loss_a)  # the head too, and its buffers
    history_a = pd.read_csv(tmp_path / "straight" / "metrics.csv")
    history_b = pd.read_csv(tmp_path / "halves" / "metrics.csv")
    assert np.allclose(history_a["loss"], history_b["loss"], rtol=0, atol=0)
    expected = "feature_norm" if loss in ("adaface", "magface") else None  # the norm is their quality score
    assert read_config(tmp_path / "halves" / "last.safetensors").quality == expected


def test_ctrl_c_mid_epoch_saves_a_state_that_resumes_exactly(data, tmp_path):
    opts = dict(epochs=2, loss="softmax", aug="light")
    train(_options(data, tmp_path / "straight", **opts))
    result = train(_options(data, tmp_path / "cut", **opts), step_hook=_ctrl_c_after_step(6))  # mid second epoch
    assert result.stopped == "interrupted" and result.steps == 6
    state = load_training_state(tmp_path / "cut" / "last_state.pt")
    assert (state["epoch"], state["batch"], state["step"]) == (1, 2, 6)
    result = train(resolve_options({}, resume=tmp_path / "cut"), resume=True)
    assert result.stopped == "finished" and result.steps == 8
    a, b = _weights(tmp_path / "straight" / "last.safetensors"), _weights(tmp_path / "cut" / "last.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def _ctrl_c_after_step(stop_at: int):
    """A step hook that does what Ctrl-C does, delivered to this process, after global step `stop_at`."""

    def hook(step: int, loss: torch.Tensor) -> torch.Tensor:
        if step == stop_at:
            os.kill(os.getpid(), signal.SIGINT)
        return loss

    return hook


def _nan_at_second_step():
    """A step hook that makes the second step of this call return a NaN loss; the others train as usual."""
    calls = [0]

    def hook(step: int, loss: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        return torch.tensor(float("nan")) if calls[0] == 2 else loss

    return hook


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_checkpoint(data, tmp_path):
    run = tmp_path / "run"
    train(_options(data, run, epochs=1))
    before = (run / "last.safetensors").read_bytes()
    with pytest.raises(FaceCliError, match=r"at step 6 \(epoch 2, batch 2\).*last.safetensors is the last good"):
        train(resolve_options({"epochs": 2}, resume=run), resume=True, step_hook=_nan_at_second_step())
    assert (run / "last.safetensors").read_bytes() == before


def test_losses_read_back_every_few_steps_give_the_same_run_and_the_same_nan_step(data, tmp_path, monkeypatch):
    """As on a GPU, where the loop reads the losses back every 10 steps instead of syncing at each."""
    from facecli.training.pending_losses import PendingLosses

    every_step = train(_options(data, tmp_path / "every", epochs=2))
    monkeypatch.setattr(PendingLosses, "for_device", classmethod(lambda cls, device: cls(3)))
    batched = train(_options(data, tmp_path / "batched", epochs=2))
    assert [row["loss"] for row in batched.history] == [row["loss"] for row in every_step.history]
    a, b = _weights(tmp_path / "every" / "last.safetensors"), _weights(tmp_path / "batched" / "last.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(FaceCliError, match=r"loss became nan at step 2 \(epoch 1, batch 2\).*no checkpoint was saved"):
        train(_options(data, tmp_path / "nan", epochs=2), step_hook=_nan_at_second_step())  # none to name


def test_an_existing_run_is_not_overwritten_without_force(data, tmp_path):
    run = tmp_path / "run"
    train(_options(data, run))
    with pytest.raises(FaceCliError, match="already holds a run.*--resume.*--force"):
        train(_options(data, run))
    assert train(_options(data, run), force=True).stopped == "finished"


def test_patience_stops_after_that_many_epochs_without_a_better_validation(data, tmp_path):
    run = tmp_path / "run"
    options = _options(data, run, epochs=6, lr=0.0, patience=1, val_pairs=data / "pairs.txt", val_root=data / "faces")
    result = train(options)
    scores = pd.read_csv(run / "metrics.csv")["val_auc"].rolling(SMOOTHING, min_periods=1).mean().tolist()
    best, expected = -1.0, len(scores)
    for epoch, score in enumerate(scores, 1):
        if score <= best:  # an equal score is no improvement
            expected = epoch
            break
        best = score
    assert result.epochs_done == expected < 6  # lr 0: the score cannot keep improving
    assert result.stopped == "early stop"


def test_validation_pairs_of_training_images_get_a_warning(data, tmp_path):
    trained = [line.split(";", 1)[1] for line in (data / "cls_train.txt").read_text().splitlines()]
    (tmp_path / "seen.txt").write_text("".join(f"{a} {b} {int(Path(a).parent == Path(b).parent)}\n"
                                               for a, b in zip(trained[:10], trained[1:11], strict=True)))  # fmt: skip
    seen = train(_options(data, tmp_path / "seen", val_pairs=tmp_path / "seen.txt", val_root=Path("/")))
    assert any("11 of the 11 --val-pairs images are training images" in note for note in seen.notes), seen.notes
    unseen = train(_options(data, tmp_path / "unseen", val_pairs=data / "pairs.txt", val_root=data / "faces"))
    assert not any("are training images" in note for note in unseen.notes)


def test_an_image_listed_under_two_identities_gets_a_warning(data, tmp_path):
    lines = (data / "cls_train.txt").read_text().splitlines()
    twice = tmp_path / "twice.txt"
    twice.write_text("\n".join([*lines, "1;" + lines[0].split(";", 1)[1]]) + "\n")  # image 0 also as identity 1
    result = train(_options(data, tmp_path / "run", data=twice))
    assert any("1 image(s) listed under two or more identities" in note for note in result.notes), result.notes


def test_resume_on_changed_data_is_refused_naming_the_change(data, tmp_path):
    faces, run = tmp_path / "faces", tmp_path / "run"
    shutil.copytree(data / "faces", faces)
    train(_options(data, run, data=faces, loss="arcface"))
    state = (run / "last_state.pt").read_bytes()
    images = sorted(faces.rglob("*.jpg"))
    shutil.move(faces / "person_0000", tmp_path / "aside")  # an identity gone
    with pytest.raises(FaceCliError, match=r"trained on 8 identities, the data now has 7: 1 gone \(person_0000\)"):
        train(resolve_options({"epochs": 2}, resume=run), resume=True)  # the head's shape: a traceback before
    shutil.move(tmp_path / "aside", faces / "person_0000")
    images[-1].unlink()  # an image gone
    with pytest.raises(FaceCliError, match=f"started on {len(images)} images, the data now has {len(images) - 1}"):
        train(resolve_options({"epochs": 2}, resume=run), resume=True)
    assert (run / "last_state.pt").read_bytes() == state


def test_resume_refuses_to_change_the_recipe(data, tmp_path):
    run = tmp_path / "run"
    train(_options(data, run))
    with pytest.raises(FaceCliError, match="cannot change loss"):
        resolve_options({"loss": "softmax"}, resume=run)


def test_yaml_config_is_overridden_by_the_command_line(data, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(f"data: {data / 'cls_train.txt'}\nrun-dir: {tmp_path / 'run'}\nloss: cosface\nepochs: 3\n")
    options = resolve_options({"epochs": 1}, config)
    assert (options.loss, options.epochs, options.batch_size) == ("cosface", 1, None)  # None: the recipe chooses
    config.write_text("data: x\nrun_dir: y\nlearning_rate: 0.1\n")
    with pytest.raises(FaceCliError, match="unknown training option 'learning_rate'"):
        resolve_options({}, config)
    config.write_text("data: [unclosed\n")
    with pytest.raises(FaceCliError, match=r"run.yaml line \d+: not valid YAML"):
        resolve_options({}, config)


def test_bad_training_inputs_are_named(data, tmp_path):
    bad = tmp_path / "cls_train.txt"
    bad.write_text("0;a.jpg\nzero;b.jpg\n")
    with pytest.raises(FaceCliError, match=r"cls_train.txt line 2: class id 'zero' is not an integer"):
        train(_options(data, tmp_path / "run", data=bad))
    lines = (data / "cls_train.txt").read_text().splitlines()
    firsts = {line.split(";")[0]: line for line in reversed(lines)}  # one image of each identity
    (tmp_path / "one_each.txt").write_text("\n".join(firsts.values()) + "\n")
    with pytest.raises(FaceCliError, match=r"one_each.txt: each of the 6 identities has one image"):
        train(_options(data, tmp_path / "run", data=tmp_path / "one_each.txt"))
    assert not (tmp_path / "run").exists()


def test_cli_trains_from_a_yaml_config_and_prints_the_summary(data, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(
        f"data: {data / 'cls_train.txt'}\nrun_dir: {tmp_path / 'run'}\nloss: contrastive\nbackbone: mobilenet\n"
        "img_size: 32\nembedding_size: 16\nbatch_size: 8\nk: 2\nworkers: 0\nepochs: 1\n"
    )
    overrides = ["--device", "cpu", "--scheduler", "step", "--lr-steps", "1"]
    result = runner.invoke(app, ["train", "--config", str(config), *overrides])
    assert result.exit_code == 0, result.output
    assert "training run" in result.output and "finished" in result.output
    assert (tmp_path / "run" / "best.safetensors").is_file()
    again = runner.invoke(app, ["train", "--config", str(config)])
    assert again.exit_code == 2 and "already holds a run" in again.output


@pytest.mark.slow
def test_two_process_gloo_run_writes_a_checkpoint_that_loads_and_evaluates(data, tmp_path):
    """Also with a truncated JPEG in the list: the ranks replace it and agree on going on."""
    import shutil
    import subprocess
    import sys

    from facecli.embed import EmbedOptions
    from facecli.runtime import resolve_runtime
    from facecli.verification import PairsInput, evaluate

    run, copy = tmp_path / "ddp", tmp_path / "data"
    shutil.copytree(data, copy)
    (copy / "cls_train.txt").write_text((data / "cls_train.txt").read_text().replace(str(data), str(copy)))
    cut = sorted((copy / "faces").rglob("*.jpg"))[0]
    cut.write_bytes(cut.read_bytes()[:-200])
    command = [
        sys.executable, "-m", "facecli", "train", "--nproc", "2", "--data", str(copy / "cls_train.txt"),
        "--max-bad-fraction", "0.1",
        "--run-dir", str(run), "--loss", "triplet", "--backbone", "mobilenet", "--img-size", "32",
        "--embedding-size", "16", "--batch-size", "8", "--k", "2", "--epochs", "2", "--workers", "0",
        "--device", "cpu", "--val-pairs", str(data / "pairs.txt"), "--val-root", str(data / "faces"),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 process(es)" in done.stderr
    assert (run / "bad_images.txt").read_text().startswith(f"{cut}\ttruncated JPEG")
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics["epoch"]) == [1, 2]
    assert list(metrics["step"]) == [2, 4]  # 36 images / (8 per process x 2 processes) = 2 steps per epoch
    report = evaluate(
        checkpoint=run / "best.safetensors",
        pairs=PairsInput(data / "pairs.txt", data / "faces"),
        embedding=EmbedOptions(resolve_runtime("cpu", "fp32"), batch_size=8, workers=0),
    )
    assert report.pairs == 20 and 0.0 <= report.accuracy_mean <= 1.0
    assert report.accuracy_mean == pytest.approx(metrics.loc[metrics["val_accuracy"].idxmax(), "val_accuracy"])


@pytest.mark.slow
def test_two_processes_train_from_a_rec_each_reading_its_own_half(data, tmp_path):
    import subprocess
    import sys

    from facecli.data.packing import pack_images

    assert pack_images(data / "cls_train.txt", tmp_path / "train.rec") == 36
    run = tmp_path / "run"
    command = [
        sys.executable, "-m", "facecli", "train", "--nproc", "2", "--data", str(tmp_path / "train.rec"),
        "--run-dir", str(run), "--loss", "arcface", "--backbone", "mobilenet", "--img-size", "32",
        "--embedding-size", "16", "--batch-size", "6", "--epochs", "2", "--workers", "1", "--device", "cpu",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    said = " ".join(done.stderr.split())
    assert "each of the 2 processes reads its own 18 consecutive records" in said
    assert list(pd.read_csv(run / "metrics.csv")["step"]) == [3, 6]  # 18 records per process / 6 = 3 steps
    assert (run / "best.safetensors").is_file() or (run / "last.safetensors").is_file()


@pytest.mark.slow
@pytest.mark.parametrize(("loss", "rows"), [("arcface", 6), ("subcenter_arcface", 18)])  # 3 sub-centres per class
def test_partial_fc_sharded_over_two_processes_checkpoints_whole_and_resumes_on_one_then_two(data, tmp_path, loss,
                                                                                             rows):
    import subprocess
    import sys

    from facecli.training.run_folder import STATE_FILE

    run = tmp_path / "run"
    common = ["--workers", "0", "--device", "cpu"]
    first = [
        "train", "--nproc", "2", "--data", str(data / "cls_train.txt"), "--run-dir", str(run), "--loss", loss,
        "--sample-rate", "0.5", "--backbone", "mobilenet", "--img-size", "32", "--embedding-size", "16",
        "--batch-size", "6", "--epochs", "1", "--optimizer", "sgd", *common,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for argv in (first, ["train", "--resume", str(run), "--epochs", "2", *common],
                 ["train", "--nproc", "2", "--resume", str(run), "--epochs", "3", *common]):  # fmt: skip
        done = subprocess.run([sys.executable, "-m", "facecli", *argv], capture_output=True, text=True, timeout=300,
                              env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        processes = "each of 2 processes holds about 3 of 6" if "--nproc" in argv else "all 6"
        assert f"Partial FC: {processes} class centres" in " ".join(done.stderr.split())
        state = load_training_state(run / STATE_FILE)
        assert state["loss"]["head.weight"].shape == (rows, 16)  # the 6 training identities' centres, whole
        momentum = [v["momentum_buffer"] for v in state["optimizer"]["state"].values() if "momentum_buffer" in v]
        assert any(m.shape == (rows, 16) for m in momentum)  # the head's optimizer state is whole too
    assert list(pd.read_csv(run / "metrics.csv")["epoch"]) == [1, 2, 3]
    assert (run / "last.safetensors").is_file()


def test_training_learns_the_training_identities(data, tmp_path):
    """Softmax on 6 identities: the loss falls clearly below its start (about chance, ln 6 = 1.79) in 12 epochs."""
    result = train(_options(data, tmp_path / "run", loss="softmax", epochs=12, lr=3e-3, dropout=0.0, aug="none"))
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < 0.7 * losses[0] and losses[-1] < 1.3


def test_config_json_records_exactly_the_loss_that_was_built(data, tmp_path):
    train(_options(data, tmp_path / "run", loss="arcface", scale=32.0))
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    # given, the recipe's measured margin, arcface's own default; each recorded with who chose it (the margin
    # was arcface's 0.5 "by you" until the recipe filled the options the user did not type)
    assert (saved["scale"], saved["margin"], saved["easy_margin"]) == (32.0, 0.3, False)
    by = {name: saved["recipe"][name]["by"] for name in ("scale", "margin", "easy_margin", "sample_rate")}
    assert by == {"scale": "you", "margin": "recipe", "easy_margin": "loss", "sample_rate": "loss"}
    assert saved["mining"] is None and saved["aux_ce_weight"] is None and saved["margins"] is None  # not arcface's
    with pytest.raises(FaceCliError, match="--mining applies to triplet; the loss is arcface"):
        train(_options(data, tmp_path / "other", loss="arcface", mining="semi_hard"))
    assert not (tmp_path / "other").exists()


def test_a_batch_that_needs_more_identities_than_the_data_has_adapts(data, tmp_path):
    result = train(_options(data, tmp_path / "run", batch_size=16, k=2, sampler="pk"))  # 8 identities x 2; 6 exist
    assert result.stopped == "finished"
    assert any("6 x 2" in note or "6 x 2 " in note for note in result.notes), result.notes
