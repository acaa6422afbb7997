"""Parity with the public implementations: deterministic weights in their layout, imported, same outputs."""

import argparse
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from facecli.checkpoint import load, read_config
from facecli.cli import app
from facecli.errors import FaceCliError
from facecli.importer import SOURCES, convert, import_weights
from facecli.models.embedder import default_config

# reference model -> (import source, extra source-layout tensors the published files also hold)
REFERENCE_MODELS = {
    "facenet_mobilenet": ("facenet-mobilenet", {"classifier.weight": (10, 128), "classifier.bias": (10,)}),
    "facenet_inception_resnetv1": ("facenet-inception-resnetv1", {"classifier.weight": (10, 128)}),
    "facenet_pytorch_inception_resnetv1": ("inception-resnetv1", {}),
    "arcface_iresnet18": ("arcface-iresnet18", {}),
    "arcface_iresnet50": ("arcface-iresnet50", {}),
}


def deterministic_weights(manifest: dict) -> dict[str, torch.Tensor]:
    """The deterministic-weights recipe of the reference data (tests/fixtures/reference, from ../shared/reference)."""
    out = {}
    for i, (key, shape, _) in enumerate(manifest["state_dict"]):
        g = torch.Generator().manual_seed(1000 + i)
        if key.endswith("num_batches_tracked"):
            t = torch.zeros(shape, dtype=torch.int64)
        elif key.endswith("running_var"):
            t = torch.rand(shape, generator=g) + 0.5
        elif key.endswith("running_mean"):
            t = torch.randn(shape, generator=g) * 0.1
        elif len(shape) >= 2:
            t = torch.randn(shape, generator=g) / math.sqrt(math.prod(shape[1:]))
        elif key.endswith(".weight"):
            t = 1 + torch.randn(shape, generator=g) * 0.1
        else:
            t = torch.randn(shape, generator=g) * 0.1
        out[key] = t
    return out


@pytest.mark.parametrize("name", list(REFERENCE_MODELS))
def test_imported_weights_reproduce_the_reference_outputs(reference, tmp_path, name):
    arch, extra = REFERENCE_MODELS[name]
    manifest = json.loads((reference / f"{name}.manifest.json").read_text())
    state = deterministic_weights(manifest)
    state.update({k: torch.zeros(shape) for k, shape in extra.items()})
    wrapped = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}
    torch.save(wrapped, tmp_path / "published.pth")

    import_weights(tmp_path / "published.pth", arch=arch, out=tmp_path / "model.safetensors")
    model = load(tmp_path / "model.safetensors")
    c = read_config(tmp_path / "model.safetensors")
    _, _, h, w = manifest["input"]["shape"]
    assert c.input_size == (h, w)
    raw = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(7))
    # the stored mean/std must reproduce the source's own preprocessing formula
    x = (raw - torch.tensor(c.mean).view(1, 3, 1, 1)) / torch.tensor(c.std).view(1, 3, 1, 1)
    expected = torch.from_numpy(np.load(reference / f"{name}.expected.npz")["output"])
    with torch.no_grad():
        if manifest["output"]["l2_normalized"]:
            got = model(x)
        else:
            got = model.neck(model.trunk(x))
            torch.testing.assert_close(model(x), F.normalize(expected, dim=1), atol=1e-5, rtol=0)
    # relative to the output's scale: un-normalised iresnet outputs reach 3e4, and float32 summation order
    # differs between CPUs (~1e-5 relative); a wrong mapping is off by order 1
    assert (got - expected).abs().max().item() < 5e-5 * max(1.0, expected.abs().max().item())


def test_source_preprocessing_is_recorded():
    standalone = SOURCES["inception-resnetv1"]
    raw = torch.rand(5)
    torch.testing.assert_close((raw - standalone.mean[0]) / standalone.std[0], (raw * 255 - 127.5) / 128)
    assert SOURCES["facenet-mobilenet"].resize == "letterbox"


def test_arcface_iresnet34_layout_round_trips():
    from facecli.models import create_model

    ours = create_model("iresnet34", input_size=112).eval()
    inverse = {"neck.bn_in.": "bn2.", "neck.fc.": "fc.", "neck.bn.": "features.", "trunk.": ""}
    published = {}
    for key, value in ours.state_dict().items():
        prefix = next(p for p in inverse if key.startswith(p))
        published[inverse[prefix] + key[len(prefix) :]] = value
    imported = convert(published, "arcface-iresnet34")
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        torch.testing.assert_close(imported(x), ours(x), atol=0, rtol=0)


def test_vgg16_trunk_from_torchvision_layout():
    from torchvision.models import vgg16

    tv = vgg16(weights=None).state_dict()
    model = convert(tv, "vgg16")
    torch.testing.assert_close(model.trunk.features[28].weight, tv["features.28.weight"])
    assert model.config.input_size == (105, 105)
    assert (model.config.mean, model.config.std) == ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # as siamese repos feed it


def test_vgg16_from_scratch_is_fed_centred_input():
    """No BatchNorm in VGG16: from scratch it trains on (RGB/255 - 0.5) / 0.5 (imported weights: the test above)."""
    scratch = default_config("vgg16")
    assert (scratch.mean, scratch.std) == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    pixels = scratch.preprocessing.batch([np.full((105, 105, 3), 255, np.uint8), np.zeros((105, 105, 3), np.uint8)])
    assert pixels[0].max() == pytest.approx(1.0) and pixels[1].min() == pytest.approx(-1.0)


def test_every_problem_is_listed():
    state = deterministic_weights({"state_dict": [["conv1.weight", [64, 3, 3, 3], "f"]]})
    state["conv1.weight"] = torch.zeros(64, 3, 5, 5)
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(FaceCliError) as info:
        convert(state, "arcface-iresnet18", origin="r18.pth")
    message = str(info.value)
    assert "r18.pth" in message and "missing layer1.0.conv1.weight" in message
    assert "unexpected extra.weight" in message and "shape (64, 3, 5, 5), expected (64, 3, 3, 3)" in message


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(FaceCliError, match="refused, it needs arbitrary unpickling"):
        import_weights(path, arch="arcface-iresnet18", out=tmp_path / "out.safetensors")
    assert not (tmp_path / "out.safetensors").exists()


def test_cli_lists_sources_and_rejects_unknown_arch(tmp_path, monkeypatch):
    from facecli.console import console

    monkeypatch.setattr(console, "width", 200)
    runner = CliRunner()
    result = runner.invoke(app, ["import", "--list"])
    assert result.exit_code == 0 and "arcface-iresnet100" in result.output
    (tmp_path / "w.pth").write_bytes(b"")
    result = runner.invoke(app, ["import", str(tmp_path / "w.pth"), "--arch", "arcface-iresnet5", "--out", "x"])
    assert result.exit_code == 2 and "did you mean 'arcface-iresnet50'" in result.output
