"""`facecli eval --bin`: insightface's .bin validation sets, read without running code, scored as
insightface's verification scores them."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from facecli.checkpoint import load, save_model
from facecli.cli import app
from facecli.data.bin_sets import read_bin, write_bin
from facecli.data.images import decode
from facecli.data.synth import synth
from facecli.errors import FaceCliError
from facecli.models import create_model
from facecli.verification.metrics import verification_report

runner = CliRunner()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bin")
    synth(tmp / "faces", identities=5, images=4, size=32, seed=6)
    files = sorted((tmp / "faces").rglob("*.jpg"))
    images, issame = [], []
    for n in range(40):  # pairs: same identity for even n, different for odd n
        a = files[(n * 3) % len(files)]
        b = files[((n * 3) % len(files) // 4) * 4 + (n % 3)] if n % 2 == 0 else files[(n * 7 + 5) % len(files)]
        images += [a.read_bytes(), b.read_bytes()]
        issame.append(a.parent == b.parent)
    write_bin(tmp / "lfw.bin", images, issame)
    save_model(create_model("mobilenet", input_size=32, embedding_size=16).eval(), tmp / "model.safetensors")
    return tmp


def test_eval_bin_scores_pairs_in_order_as_insightface_does(world, tmp_path):
    args = ["eval", "-c", str(world / "model.safetensors"), "--bin", str(world / "lfw.bin"), "--device", "cpu",
            "--backend", "torch", "--report", str(tmp_path / "r.json")]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    data = read_bin(world / "lfw.bin")
    model = load(world / "model.safetensors")
    with torch.inference_mode():
        x = model.preprocess([decode(b) for b in data.images])
        emb = model(x).numpy()
    distances = np.linalg.norm(emb[0::2] - emb[1::2], axis=1)
    expected = verification_report(-distances, np.array(data.issame, np.int64), "euclidean")
    assert report["pairs"] == 40 and report["forward_passes"] == 80
    assert report["accuracy_per_fold"] == pytest.approx(expected.accuracy_per_fold)
    assert report["auc"] == pytest.approx(expected.auc, abs=1e-6)


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.marker}",))


def test_a_bin_whose_pickle_holds_code_is_refused_and_the_code_never_runs(tmp_path):
    marker = tmp_path / "code_ran"
    (tmp_path / "evil.bin").write_bytes(pickle.dumps(([_RunsCode(marker)], [True])))
    with pytest.raises(FaceCliError, match=r"evil.bin: refused: it asks for (posix|os)\.system"):
        read_bin(tmp_path / "evil.bin")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        (([b"x", b"y", b"z"], [True]), "3 images for 1 pairs"),
        (([b"x", b"y"], ["yes"]), "expected a list of encoded images and a list of bools"),
        ({"a": 1}, "expected (images, issame), got a dict"),
    ],
)
def test_malformed_bins_are_one_line_errors(tmp_path, content, expect):
    (tmp_path / "bad.bin").write_bytes(pickle.dumps(content))
    with pytest.raises(FaceCliError, match=expect.replace("(", r"\(").replace(")", r"\)")):
        read_bin(tmp_path / "bad.bin")


def test_an_image_that_will_not_decode_names_its_pair(world, tmp_path):
    data = read_bin(world / "lfw.bin")
    data.images[3] = data.images[3][:-200]
    write_bin(tmp_path / "cut.bin", data.images, data.issame)
    result = runner.invoke(app, ["eval", "-c", str(world / "model.safetensors"), "--bin", str(tmp_path / "cut.bin"),
                                 "--device", "cpu"])  # fmt: skip
    assert result.exit_code == 2 and "cut.bin image 3 (pair 1): truncated JPEG" in " ".join(result.output.split())


def test_loader_options_are_refused_with_bin(world):
    args = ["eval", "-c", str(world / "model.safetensors"), "--bin", str(world / "lfw.bin"), "--workers", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "--workers: --bin images are decoded from the file" in result.output


def test_train_validates_on_a_bin_each_epoch_as_eval_bin_scores_it(world, tmp_path):
    from facecli.training import TrainOptions, train

    options = TrainOptions(data=world / "faces", run_dir=tmp_path / "run", val_bin=world / "lfw.bin",
                           backbone="mobilenet", img_size=32, embedding_size=16, loss="softmax", epochs=2,
                           batch_size=8, workers=0, device="cpu")  # fmt: skip
    result = train(options)
    assert [row["val_accuracy"] is not None for row in result.history] == [True, True]
    args = ["eval", "-c", str(tmp_path / "run" / "last.safetensors"), "--bin", str(world / "lfw.bin"),
            "--device", "cpu", "--backend", "torch", "--report", str(tmp_path / "r.json")]  # fmt: skip
    assert runner.invoke(app, args).exit_code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["accuracy_mean"] == pytest.approx(result.history[-1]["val_accuracy"], abs=1e-6)
    with pytest.raises(FaceCliError, match="--val-pairs or on --val-bin, not both"):
        train(TrainOptions(data=world / "faces", run_dir=tmp_path / "x", val_bin=world / "lfw.bin",
                           val_pairs=world / "lfw.bin"))  # fmt: skip


def _flavour(world, name: str) -> bytes:
    """The same set as insightface's and other tools' scripts write it."""
    data = read_bin(world / "lfw.bin")
    arrays = [np.frombuffer(b, np.uint8).reshape(-1, 1) for b in data.images]  # what cv2.imencode returns
    return {
        "protocol 2 bytes": lambda: pickle.dumps((data.images, data.issame), protocol=2),  # _codecs.encode
        "cv2.imencode arrays, bool array": lambda: pickle.dumps((arrays, np.array(data.issame)), protocol=4),
        "protocol 5 arrays": lambda: pickle.dumps((arrays, np.array(data.issame)), protocol=5),
        "numpy bool items": lambda: pickle.dumps((data.images, [np.bool_(x) for x in data.issame]), protocol=2),
    }[name]()


@pytest.mark.parametrize(
    "flavour",
    ["protocol 2 bytes", "cv2.imencode arrays, bool array", "protocol 5 arrays", "numpy bool items"],
)
def test_every_flavour_of_bin_the_field_writes_reads_alike(world, tmp_path, flavour):
    (tmp_path / "set.bin").write_bytes(_flavour(world, flavour))
    original, read = read_bin(world / "lfw.bin"), read_bin(tmp_path / "set.bin")
    assert read.images == original.images and read.issame == original.issame


@pytest.mark.parametrize(
    ("payload", "expect"),
    [(lambda: pickle.dumps(([np.zeros(3, np.float64)] * 2, [True]), protocol=4), "numpy array of 'f8'"),
     (lambda: pickle.dumps(([np.array([b"x"], dtype=object)] * 2, [True]), protocol=4), "numpy array of 'O8'"),
     (lambda: b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x05\x00\x00\x00utf-7\x86R.", "stores bytes as latin1")],
)  # fmt: skip
def test_other_reconstructions_are_still_refused_without_running(tmp_path, payload, expect):
    (tmp_path / "bad.bin").write_bytes(payload())
    with pytest.raises(FaceCliError, match="refused: .*" + expect.replace("(", r"\(")):
        read_bin(tmp_path / "bad.bin")


def test_a_model_whose_embeddings_are_nan_is_named_for_a_bin_set(world, tmp_path):
    model = load(world / "model.safetensors")
    with torch.no_grad():
        model.neck.fc.weight.fill_(float("nan"))
    save_model(model, tmp_path / "nan.safetensors")
    args = ["eval", "-c", str(tmp_path / "nan.safetensors"), "--bin", str(world / "lfw.bin"), "--backend", "torch"]
    result = runner.invoke(app, args)
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "lfw.bin: the model's embedding of image 0 (pair 0) is not finite" in said
