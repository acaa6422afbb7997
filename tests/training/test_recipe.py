"""The recipe planned from the data: rules, what the user gives wins, fine-tuning, any number of identities."""

import json
import math

import pandas as pd
import pytest

from facecli.checkpoint import read_config, save_model
from facecli.data.synth import synth
from facecli.errors import FaceCliError
from facecli.models import create_model, default_config
from facecli.training import TrainOptions, train
from facecli.training.recipe import TIME_BUDGET_CPU_S, TIME_BUDGET_GPU_S, TRIPLET_BELOW, Fingerprint, plan
from facecli.training.run_length import LOADER_EFFICIENCY, size_run


def _fp(identities=20, images=200, side=32, median=10.0):
    return Fingerprint(identities, images, 2, median, 0, side, False, "cpu", 2)


def _planned(fp, init=None, **given):
    return plan(TrainOptions(data="d", run_dir="r", **given), fp, init).check()


def test_few_identities_get_triplet_and_many_get_arcface_with_a_small_scale():
    few = _planned(_fp(identities=TRIPLET_BELOW - 1))
    many = _planned(_fp(identities=TRIPLET_BELOW, images=5000, median=20.0))  # more than 12 each
    assert few.loss == "triplet" and few.k == 4 and few.scale is None
    assert (many.loss, many.scale, many.margin) == ("arcface", 32.0, 0.3)
    assert few.backbone == many.backbone == "timm/resnet10t" and few.recipe["loss"]["by"] == "recipe"


def test_many_identities_with_up_to_twelve_images_each_get_triplet_with_all_triplets():
    few = _planned(_fp(identities=400, images=1200, median=3.0))
    assert (few.loss, few.mining, few.k) == ("triplet", "all", 3)
    assert "3 images per identity" in few.recipe["loss"]["reason"] and few.recipe["mining"]["by"] == "recipe"
    twelve = _planned(_fp(identities=1000, images=12000, median=12.0))
    assert (twelve.loss, twelve.mining, twelve.k) == ("triplet", "all", 4)
    more = _planned(_fp(identities=1000, images=13000, median=13.0))  # more each: not measured, ArcFace
    assert more.loss == "arcface" and "published recipes' loss" in more.recipe["loss"]["reason"]
    assert _planned(_fp(identities=400, images=1200, median=3.0), mining="batch_hard").mining == "batch_hard"


def test_sub_center_arcface_gets_the_scale_that_fit_wrong_labels_and_the_other_heads_their_own():
    sub_center = _planned(_fp(), loss="subcenter_arcface")
    assert (sub_center.scale, sub_center.margin, sub_center.sub_centers) == (32.0, 0.3, 3)
    assert sub_center.recipe["scale"]["by"] == "recipe" and sub_center.recipe["sub_centers"]["by"] == "loss"
    given = _planned(_fp(), loss="subcenter_arcface", scale=64.0)
    assert given.scale == 64.0 and given.recipe["scale"]["by"] == "you"
    assert _planned(_fp(), loss="curricularface").scale == 64.0  # its own default: s=32 measured no better


def test_the_size_follows_the_images_and_the_length_a_time_budget():
    small, large = _planned(_fp(side=24)), _planned(_fp(side=250))
    assert (small.img_size, large.img_size) == (32, 112)
    assert small.epochs is None and small.time_budget == TIME_BUDGET_CPU_S  # epochs wait for the step time
    assert small.recipe["time_budget"]["by"] == "recipe"
    gpu = plan(TrainOptions(data="d", run_dir="r"), Fingerprint(20, 200, 2, 10.0, 0, 32, False, "cuda:0", 2), None)
    assert gpu.time_budget == TIME_BUDGET_GPU_S


def test_the_epochs_fill_the_budget_at_the_measured_step_time():
    planned = _planned(_fp())  # 210 s, no validation
    assert size_run(planned, 0.1, 10, 0).epochs == int(210 // (0.1 * 10 / LOADER_EFFICIENCY))  # 189
    assert size_run(planned, 0.2, 10, 0).epochs < size_run(planned, 0.1, 10, 0).epochs  # slower steps: fewer
    assert size_run(planned, 0.1, 20, 0).epochs < size_run(planned, 0.1, 10, 0).epochs  # more data: fewer
    assert size_run(planned, 10.0, 100, 0).epochs == 3 and size_run(planned, 0.001, 1, 0).epochs == 200  # clamped
    validated = _planned(_fp(), val_pairs="p.txt")
    assert size_run(validated, 0.1, 10, 5000).epochs < size_run(validated, 0.1, 10, 0).epochs  # validation's cost
    started_late = size_run(planned, 0.1, 10, 0, spent=105.0)  # start-up took half the budget: half the epochs
    assert started_late.epochs == int(105 // (0.1 * 10 / LOADER_EFFICIENCY))
    assert "(105 s of it spent starting)" in started_late.recipe["epochs"]["reason"]
    sized = size_run(validated, 0.1, 10, 100)
    assert "100 ms a step (measured here)" in sized.recipe["epochs"]["reason"] and sized.val_every >= 1
    given = _planned(_fp(), epochs=4)
    assert size_run(given, 0.1, 10, 0) is given and given.time_budget is None


def test_what_the_user_gives_wins_and_loss_options_imply_the_loss():
    given = _planned(_fp(), loss="cosface", epochs=2, lr=0.1)
    assert (given.loss, given.epochs, given.lr) == ("cosface", 2, 0.1)
    assert given.recipe["epochs"] == {"value": 2, "reason": "given", "by": "you"}
    assert _planned(_fp(identities=5000), mining="semi_hard").loss == "triplet"
    assert _planned(_fp(), easy_margin=True).loss == "arcface"
    with pytest.raises(FaceCliError, match="no loss takes all of --mining, --easy-margin"):
        _planned(_fp(), mining="all", easy_margin=True)


def test_a_fine_tune_keeps_the_models_backbone_and_size_and_lowers_the_lr():
    init = default_config("iresnet18")
    tuned, scratch = _planned(_fp(side=112), init), _planned(_fp(side=112))
    assert (tuned.backbone, tuned.img_size) == ("iresnet18", 112) and tuned.recipe["backbone"]["by"] == "fine-tune"
    assert tuned.lr == scratch.lr / 10 and tuned.time_budget == scratch.time_budget / 2


@pytest.fixture(scope="module")
def ten(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ten")
    synth(tmp / "faces", identities=10, images=8, size=32, seed=11)
    return tmp


def test_ten_identities_train_with_triplet_at_the_default_batch_and_the_recipe_is_recorded(ten, tmp_path):
    result = train(TrainOptions(data=ten / "faces", run_dir=tmp_path / "run", loss="triplet", epochs=1, workers=0))
    assert result.stopped == "finished"
    assert any("10 x 6" in note for note in result.notes), result.notes  # 16 identities x 4 asked, 10 exist
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["batch_size"] == 64 and saved["recipe"]["loss"]["by"] == "you"
    assert saved["recipe"]["backbone"] == {
        "value": "timm/resnet10t",
        "reason": saved["recipe"]["backbone"]["reason"],
        "by": "recipe",
    }
    assert (tmp_path / "run" / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_two_identities_train(tmp_path):
    synth(tmp_path / "faces", identities=2, images=3, size=32, seed=12)
    result = train(TrainOptions(data=tmp_path / "faces", run_dir=tmp_path / "run", epochs=1, workers=0))
    assert result.stopped == "finished" and result.steps >= 1


def _trunk_and_neck(path):
    from facecli.checkpoint import load

    model = load(path)
    return model.trunk.state_dict(), model.neck.state_dict()


def test_init_starts_from_the_files_trunk_and_a_frozen_trunk_stays_as_it_was(ten, tmp_path):
    import torch

    base = create_model("timm/resnet10t", input_size=32, embedding_size=16)
    save_model(base.eval(), tmp_path / "base.safetensors")
    options = dict(data=ten / "faces", init=tmp_path / "base.safetensors", loss="triplet", epochs=1, workers=0)
    train(TrainOptions(run_dir=tmp_path / "frozen", freeze_trunk_epochs=1, **options))
    trunk, neck = _trunk_and_neck(tmp_path / "frozen" / "last.safetensors")
    start_trunk, start_neck = base.trunk.state_dict(), base.neck.state_dict()
    assert all(torch.equal(trunk[k], start_trunk[k]) for k in trunk)  # weights and BatchNorm statistics
    assert any(not torch.equal(neck[k], start_neck[k]) for k in neck)
    train(TrainOptions(run_dir=tmp_path / "slow", trunk_lr_mult=0.0, **options))
    trunk, _ = _trunk_and_neck(tmp_path / "slow" / "last.safetensors")
    params = {name for name, _ in base.trunk.named_parameters()}
    assert all(torch.equal(trunk[k], start_trunk[k]) for k in params)  # lr x 0: no parameter moved
    saved = json.loads((tmp_path / "slow" / "config.json").read_text())
    assert saved["recipe"]["lr"]["by"] == "fine-tune" and saved["embedding_size"] is None


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"\x80\x04junk"), "never unpickles"),
        (lambda p: p.write_bytes(b"\x00" * 10), "not a readable .safetensors"),
        (lambda p: save_model(create_model("mobilenet", input_size=32, embedding_size=8), p), "mobilenet model"),
    ],
    ids=["pickled", "truncated", "another architecture"],
)
def test_a_bad_init_file_is_one_error_and_writes_nothing(ten, tmp_path, make, message):
    init = tmp_path / "init.safetensors"
    make(init)
    options = TrainOptions(data=ten / "faces", run_dir=tmp_path / "run", init=init, backbone="timm/resnet10t")
    with pytest.raises(FaceCliError, match=message):
        train(options)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_fine_tuning_beats_training_from_scratch_on_a_small_new_set(tmp_path):
    """Pretrain on one synthetic population; on 20 new identities x 5, at the same steps, the fine-tuned
    model verifies pairs of 10 further new identities better than one trained from scratch. Both runs
    are given the same (light) augmentation: the test is of --init, not of the augmentation rule."""
    from facecli.data.annotation import annotate

    synth(tmp_path / "pre", identities=100, images=6, size=32, seed=31)
    common = dict(backbone="timm/resnet10t", img_size=32, embedding_size=64, workers=0, device="cpu")
    # pretrained on the whole population (the recipe would hold back a tenth of it to validate on)
    pre = dict(loss="arcface", epochs=6, val_holdout=0)
    train(TrainOptions(data=tmp_path / "pre", run_dir=tmp_path / "pre_run", **pre, **common))
    synth(tmp_path / "new", identities=30, images=5, size=32, seed=32)
    annotate(tmp_path / "new", out_dir=tmp_path, pairs=120, folds=10, pairs_out=tmp_path / "pairs.txt", holdout=10)
    small = dict(data=tmp_path / "cls_train.txt", loss="triplet", epochs=8, val_pairs=tmp_path / "pairs.txt",
                 val_root=tmp_path / "new", aug="light", **common)  # fmt: skip
    scratch = train(TrainOptions(run_dir=tmp_path / "scratch", **small))
    tuned = train(TrainOptions(run_dir=tmp_path / "tuned", init=tmp_path / "pre_run" / "last.safetensors", **small))
    assert tuned.steps == scratch.steps
    assert tuned.history[-1]["val_accuracy"] > scratch.history[-1]["val_accuracy"]


def test_few_identities_with_few_images_get_strong_augmentation_and_others_light():
    assert _planned(_fp(identities=TRIPLET_BELOW - 1)).aug == "strong"
    assert _planned(_fp(identities=7, images=1200, median=180.0)).aug == "light"
    assert _planned(_fp(identities=TRIPLET_BELOW, images=5000)).aug == "light"
    assert _planned(_fp(identities=20), aug="none").aug == "none"  # given wins


def test_without_a_validation_set_a_tenth_of_the_identities_is_held_back_and_patience_planned():
    planned = plan(TrainOptions(data="d", run_dir="r"), _fp_positives(200), None).check()
    assert planned.val_holdout == 20 and planned.recipe["val_holdout"]["by"] == "recipe"
    assert planned.patience == 5 and planned.val_every is None  # set with the epochs, once a step is timed
    assert plan(TrainOptions(data="d", run_dir="r"), _fp_positives(19), None).check().val_holdout == 0
    few = plan(TrainOptions(data="d", run_dir="r"), _fp_positives(40), None).check()
    assert few.val_holdout == 4 and few.patience == 5  # the smoothed AUC of 4 held back tells a plateau
    assert few.recipe["patience"] == {"value": 5, "reason": "5 validations without a better score", "by": "recipe"}
    assert plan(TrainOptions(data="d", run_dir="r"), _fp_positives(5000), None).check().val_holdout == 100
    given = plan(TrainOptions(data="d", run_dir="r", val_pairs="p.txt"), _fp_positives(200), None).check()
    assert given.val_holdout is None and given.patience == 5  # the user's pairs validate instead
    fixed = plan(TrainOptions(data="d", run_dir="r", epochs=3), _fp_positives(200), None).check()
    assert fixed.patience is None  # a length the user fixed runs in full


def _fp_positives(identities):
    return Fingerprint(identities, identities * 5, 2, 5.0, 0, 32, False, "cpu", 2, with_positives=identities)


def test_a_run_without_validation_holds_identities_back_and_calibrates_the_threshold(tmp_path):
    synth(tmp_path / "faces", identities=24, images=4, size=32, seed=12)
    run = tmp_path / "run"
    result = train(TrainOptions(data=tmp_path / "faces", run_dir=run, epochs=2, workers=0, device="cpu"))
    table = pd.read_csv(run / "val_pairs.csv")
    held = set(table["imageA"]) | set(table["imageB"])
    assert (table["label"] == 1).sum() == 4 * 6 and (table["label"] == 0).sum() == 4 * 6  # every genuine pair
    trained = {line.split(";")[1] for line in (run / "classes.txt").read_text().splitlines()}
    assert len(trained) == 24 - 4 and result.history[-1]["val_accuracy"] is not None
    assert not any(row.split("/")[0] in trained for row in held)  # never trained on
    config = read_config(run / "best.safetensors")
    assert config.threshold is not None and config.threshold_metric == "cosine"
    assert config.colour == "colour"  # what int8 calibration checks its faces against
    assert any("4 identities held back" in note for note in result.notes)


def test_grey_faces_saved_as_colour_files_are_grey(tmp_path):
    import cv2

    from facecli.data.images import image_files
    from facecli.data.training_set import read_training_set
    from facecli.training.recipe import fingerprint

    synth(tmp_path / "faces", identities=3, images=2, size=32, seed=1)
    assert not fingerprint(read_training_set(tmp_path / "faces"), "cpu").grey
    for path in image_files(tmp_path / "faces"):  # three equal channels in an RGB JPEG
        cv2.imwrite(str(path), cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), cv2.COLOR_GRAY2BGR))
    assert fingerprint(read_training_set(tmp_path / "faces"), "cpu").colour == "grey"


def test_the_step_probe_times_steps_and_puts_everything_back():
    import torch

    from facecli.losses.options import build_loss
    from facecli.runtime import resolve_runtime
    from facecli.training.optim import build_optimizer
    from facecli.training.precision import precision_for
    from facecli.training.probe import probe_labels, seconds_per_step
    from facecli.training.step import TrainStep

    model = create_model("timm/resnet10t", input_size=32, embedding_size=8)
    net = TrainStep(model, build_loss("arcface", 8, 4, {}), False)
    optimizer = build_optimizer(net, "adamw", 1e-3, 5e-4)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.random.get_rng_state()
    labels = probe_labels(8, 2, 4)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    seconds = seconds_per_step(
        net, optimizer, precision_for(resolve_runtime("cpu")), model.config.preprocessing, labels, 32
    )
    assert 0 < seconds < 10
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert not optimizer.state and torch.equal(torch.random.get_rng_state(), rng)


@pytest.mark.parametrize(("seconds", "give_up_above", "steps"), [(0.01, None, 10), (4.0, None, 2), (4.0, 1.0, 1)])
def test_the_probe_takes_fewer_steps_of_a_slow_configuration(monkeypatch, seconds, give_up_above, steps):
    import torch

    from facecli.runtime import resolve_runtime
    from facecli.training import probe
    from facecli.training.precision import precision_for

    clock = [0.0]

    def step(*args):  # a step that takes `seconds` on a fake clock
        clock[0] += seconds
        taken.append(1)
        return torch.tensor(1.0)

    taken = []
    monkeypatch.setattr(probe, "train_step", step)
    monkeypatch.setattr(probe.time, "perf_counter", lambda: clock[0])
    net = torch.nn.Linear(2, 2)
    model = create_model("timm/resnet10t", input_size=32, embedding_size=8)
    limit = {} if give_up_above is None else {"give_up_above": give_up_above}
    found = probe.seconds_per_step(net, torch.optim.SGD(net.parameters(), 0.1), precision_for(resolve_runtime("cpu")),
                                   model.config.preprocessing, probe.probe_labels(4, None, 4), 32, **limit)  # fmt: skip
    assert found == pytest.approx(seconds) and len(taken) == steps  # 2 warm-up + 8; 1 + 1; given up after 1


def test_a_run_given_a_time_budget_sizes_its_epochs_from_a_timed_step(ten, tmp_path):
    result = train(TrainOptions(data=ten / "faces", run_dir=tmp_path / "run", time_budget=6, img_size=32, workers=0,
                                device="cpu"))  # fmt: skip
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["time_budget"] == 6 and saved["recipe"]["time_budget"]["by"] == "you"
    assert "measured here" in saved["recipe"]["epochs"]["reason"] and saved["epochs"] == len(result.history)
    assert result.seconds < 60


def test_a_run_too_short_for_its_images_size_trains_smaller_images(tmp_path):
    synth(tmp_path / "faces", identities=6, images=4, size=64, seed=4)
    result = train(TrainOptions(data=tmp_path / "faces", run_dir=tmp_path / "run", time_budget=2, workers=0,
                                device="cpu", embedding_size=16))  # fmt: skip
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    chosen = saved["recipe"]["img_size"]
    assert saved["img_size"] < 64 and chosen["by"] == "recipe" and "64 px (the images' own) fits" in chosen["reason"]
    assert result.history and read_config(tmp_path / "run" / "last.safetensors").input_size == (saved["img_size"],) * 2


def _at_scale(identities, images, device="cuda:0"):
    return Fingerprint(identities, images, 10, images / identities, 0, 112, False, device, 16, identities, False)


def test_at_published_scale_on_a_gpu_the_published_recipe_is_followed_and_cited():
    casia = plan(TrainOptions(data="d", run_dir="r"), _at_scale(10_575, 494_414), None).check()
    assert (casia.loss, casia.backbone, casia.img_size, casia.embedding_size) == ("arcface", "iresnet50", 112, 512)
    assert (casia.optimizer, casia.momentum, casia.weight_decay, casia.batch_size) == ("sgd", 0.9, 5e-4, 128)
    assert casia.lr_scale_batch and casia.lr * 512 / 64 == pytest.approx(0.1)  # 0.1 at a global batch of 512
    assert (casia.scheduler, casia.lr_steps, casia.epochs) == ("step", [12, 20, 24], 26)
    assert (casia.scale, casia.margin, casia.time_budget) == (64.0, 0.5, None)
    assert "AdaFace" in casia.recipe["epochs"]["reason"] and "arcface_torch" in casia.recipe["backbone"]["reason"]
    ms1m = plan(TrainOptions(data="d", run_dir="r"), _at_scale(85_742, 5_822_653), None).check()
    assert (ms1m.epochs, ms1m.lr_steps) == (16, [8, 14]) and "emore" in ms1m.recipe["epochs"]["reason"]
    given = plan(TrainOptions(data="d", run_dir="r", optimizer="adamw", epochs=4), _at_scale(85_742, 5_822_653), None)
    assert (given.optimizer, given.epochs) == ("adamw", 4) and given.recipe["optimizer"]["by"] == "you"
    on_cpu = plan(TrainOptions(data="d", run_dir="r"), _at_scale(10_575, 494_414, "cpu"), None).check()
    assert on_cpu.backbone == "timm/resnet10t"  # no published recipe runs on 2 CPU cores: the small-set rules


def test_mobilenet_from_scratch_on_a_small_set_is_warned_with_the_measurement():
    from facecli.training.recipe import warnings

    small = _planned(_fp(images=400), backbone="mobilenet")
    assert "0.80 vs 0.83" in warnings(small, _fp(images=400))[0] and "--init" in warnings(small, _fp(images=400))[0]
    assert warnings(_planned(_fp(images=400)), _fp(images=400)) == []  # the recipe's own backbone
    assert warnings(_planned(_fp(images=50_000), backbone="mobilenet"), _fp(images=50_000)) == []


def test_a_heavy_trunk_at_64_px_and_up_on_a_cpu_is_warned_with_the_measurement():
    from facecli.training.recipe import warnings

    big = _planned(_fp(images=400, side=96), loss="arcface", backbone="iresnet18", img_size=96)
    assert "ended at raw pixels" in warnings(big, _fp(images=400, side=96))[0]
    planned = _planned(_fp(images=400, side=96), loss="arcface", backbone="iresnet18")
    assert planned.img_size == 96 and warnings(planned, _fp(images=400, side=96)) == []  # fitted_size sizes it
    small = _planned(_fp(images=400, side=32), loss="arcface", backbone="iresnet18")
    assert warnings(small, _fp(images=400, side=32)) == []  # at 32 px it beat raw pixels everywhere
    fixed = _planned(_fp(images=400, side=96), backbone="vgg16", epochs=100)
    assert warnings(fixed, _fp(images=400, side=96)) == []  # a length the user chose is theirs


def test_mobilenet_from_scratch_gets_the_lr_miner_and_augmentation_measured_to_train_it():
    planned = _planned(_fp(), loss="triplet", backbone="mobilenet")
    assert (planned.lr, planned.mining, planned.aug) == (1e-2, "all", "light")
    assert all(planned.recipe[o]["by"] == "recipe" and "MobileNetV1" in planned.recipe[o]["reason"]
               for o in ("lr", "mining", "aug"))  # fmt: skip
    arcface = _planned(_fp(), loss="arcface", backbone="mobilenet")
    assert arcface.lr == 1e-2 and "mining" not in arcface.recipe  # the miner is triplet's alone
    given = _planned(_fp(), loss="triplet", backbone="mobilenet", lr=1e-3, mining="semi_hard", aug="strong")
    assert (given.lr, given.mining, given.aug) == (1e-3, "semi_hard", "strong")
    resnet = _planned(_fp(), loss="triplet")
    assert (resnet.lr, resnet.mining, resnet.aug) == (2e-3, "batch_hard", "strong")


def test_vgg16_from_scratch_gets_the_lr_measured_to_train_it():
    planned = _planned(_fp(), loss="contrastive", backbone="vgg16")
    assert planned.lr == 3e-4 and "no BatchNorm" in planned.recipe["lr"]["reason"]
    assert planned.aug == _planned(_fp(), loss="contrastive").aug  # only the lr was measured to differ
    assert _planned(_fp(), loss="contrastive", backbone="vgg16", lr=1e-3).lr == 1e-3


def test_three_images_per_identity_get_a_batch_of_whole_identities():
    planned = _planned(_fp(identities=100, images=300, median=3.0))
    assert planned.k == 3 and planned.batch_size == 63  # 64 is no multiple of 3: the run used to refuse it
    given = _planned(_fp(identities=100, images=300, median=3.0), batch_size=60)
    assert given.batch_size == 60 and given.recipe["batch_size"]["by"] == "you"
    assert _planned(_fp(), loss="arcface").batch_size == 64


def test_a_run_far_past_its_time_budget_stops_at_an_epoch_end_and_resumes(ten, tmp_path, monkeypatch, capsys):
    from facecli.training import state as state_module
    from facecli.training.options import resolve_options

    monkeypatch.setattr(state_module, "DEADLINE_SLACK_S", 0.0)
    monkeypatch.setattr(state_module, "DEADLINE_FACTOR", 0.0)  # every epoch end is past the deadline
    options = TrainOptions(data=ten / "faces", run_dir=tmp_path / "run", time_budget=5, img_size=32, workers=0,
                           device="cpu", val_holdout=0)  # fmt: skip
    result = train(options)
    assert result.stopped == "over time" and result.epochs_done == 1
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["epochs"] >= 3  # the planned length, which --resume continues
    assert "over time: past 0 s, the deadline of --time-budget 5 s" in " ".join(capsys.readouterr().err.split())
    resumed = train(resolve_options({"run_dir": tmp_path / "run"}, resume=tmp_path / "run"), resume=True)
    assert resumed.epochs_done == 2  # continued from its state, one more epoch before the (patched) deadline


def test_the_input_size_shrinks_until_the_budget_holds_enough_epochs_of_a_heavy_trunk():
    from facecli.training.run_length import MIN_FITTED_EPOCHS, MIN_SIZE, fitted_size, hopeless_step

    planned = _planned(_fp(images=400, side=96), loss="arcface", backbone="iresnet18", time_budget=210.0)
    assert planned.img_size == 96
    slow = 210.0 / (10 * 7)  # 10 epochs of 7 steps at 96 px
    fitted = fitted_size(planned, slow, 7)
    assert fitted is not None and MIN_SIZE <= fitted.img_size < 96 and fitted.img_size % 16 == 0
    assert fitted.recipe["img_size"]["by"] == "recipe" and "fits 9 epochs" in fitted.recipe["img_size"]["reason"]
    fast = 210.0 / (10 * MIN_FITTED_EPOCHS * 7)  # ten times the epochs needed
    assert fitted_size(planned, fast, 7) is None
    given = _planned(_fp(images=400, side=96), backbone="iresnet18", img_size=96, time_budget=210.0)
    assert fitted_size(given, slow, 7) is None  # a size the user chose is theirs
    assert hopeless_step(given, 7) == math.inf  # so its probe measures in full
    assert fitted_size(planned, hopeless_step(planned, 7), 7).img_size < 96  # one step that slow is enough
    smallest = _planned(_fp(images=400, side=32), backbone="iresnet18", time_budget=210.0)
    assert fitted_size(smallest, slow, 7) is None  # nothing smaller to fall back to


def test_the_planned_size_is_never_below_the_backbones_minimum():
    planned = _planned(_fp(side=32), backbone="inception_resnetv1")
    assert planned.img_size == 75 and "smallest input" in planned.recipe["img_size"]["reason"]
