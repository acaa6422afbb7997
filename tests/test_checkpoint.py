import json

import pytest
import torch
from safetensors.torch import save_file

from facecli.checkpoint import load, read_config, save_model
from facecli.errors import FaceCliError
from facecli.models import create_model


@pytest.fixture
def trained(tmp_path):
    model = create_model("mobilenet", input_size=32, embedding_size=8, loss="triplet")
    model.train()
    model(torch.randn(4, 3, 32, 32))  # move BatchNorm running stats away from their defaults
    path = save_model(model.eval(), tmp_path / "model.safetensors")
    return model, path


def test_round_trip_gives_identical_outputs_and_config(trained):
    model, path = trained
    loaded = load(path)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert loaded.config == model.config
    assert read_config(path).loss == "triplet"


def test_existing_file_not_overwritten_without_force(trained):
    model, path = trained
    before = path.read_bytes()
    with pytest.raises(FaceCliError, match="--force"):
        save_model(model, path)
    assert path.read_bytes() == before
    save_model(model, path, force=True)
    assert not list(path.parent.glob("*.tmp"))


def test_pickled_file_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "evil.safetensors"
    torch.save({"x": torch.zeros(1)}, path)
    with pytest.raises(FaceCliError, match="never unpickles"):
        load(path)


def test_truncated_file_is_a_clear_error(trained, tmp_path):
    _, path = trained
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(FaceCliError, match="cut.safetensors"):
        load(cut)


def test_foreign_safetensors_without_config_is_refused(tmp_path):
    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(FaceCliError, match="no facecli config"):
        load(path)


def test_weights_of_another_architecture_are_listed(trained, tmp_path):
    _, path = trained
    other = create_model("iresnet18", input_size=16, embedding_size=8)
    wrong = tmp_path / "wrong.safetensors"
    save_model(other, wrong)
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(wrong), "pt") as f:
        meta = dict(f.metadata())
    cfg = json.loads(meta["facecli"])
    cfg.update(backbone="mobilenet", input_size=[32, 32])
    save_file(load_file(str(wrong)), str(wrong), metadata={"facecli": json.dumps(cfg)})
    with pytest.raises(FaceCliError, match="do not fit backbone 'mobilenet'.*missing"):
        load(wrong)


def test_training_state_round_trips_with_weights_only_and_restores_rng(tmp_path):
    import random

    import numpy as np

    from facecli.training.resume_file import load_training_state, restore_rng_state, rng_state, save_training_state

    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    model(torch.randn(3, 4)).sum().backward()
    optimizer.step()
    scheduler.step()
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "epoch": 3, "rng": rng_state()}
    save_training_state(tmp_path / "state.pt", state)
    draws = (random.random(), np.random.rand(), torch.rand(1).item())
    loaded = load_training_state(tmp_path / "state.pt")
    restore_rng_state(loaded["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == draws
    fresh = torch.optim.AdamW(torch.nn.Linear(4, 2).parameters(), lr=0.1)
    fresh.load_state_dict(loaded["optimizer"])
    assert loaded["epoch"] == 3 and fresh.state_dict()["param_groups"][0]["lr"] == pytest.approx(0.01)


def test_training_state_with_code_objects_is_refused(tmp_path):
    import argparse

    from facecli.training.resume_file import load_training_state

    torch.save({"args": argparse.Namespace(lr=1)}, tmp_path / "state.pt")
    with pytest.raises(FaceCliError, match="unsafe training state"):
        load_training_state(tmp_path / "state.pt")


def test_a_training_state_from_before_digests_still_resumes_and_a_changed_one_is_refused(tmp_path):
    import torch

    from facecli.errors import FaceCliError
    from facecli.training.resume_file import load_training_state, save_training_state

    old = {"model": {"w": torch.ones(3)}, "optimizer": {}, "epoch": 1}
    torch.save(old, tmp_path / "old.pt")
    assert load_training_state(tmp_path / "old.pt")["epoch"] == 1
    save_training_state(tmp_path / "new.pt", old)
    saved = torch.load(tmp_path / "new.pt", weights_only=True)
    saved["state"]["epoch"] = 2  # changed after writing, the digest kept
    torch.save(saved, tmp_path / "new.pt")
    with pytest.raises(FaceCliError, match="does not match the checksum"):
        load_training_state(tmp_path / "new.pt")
