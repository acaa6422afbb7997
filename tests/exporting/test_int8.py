"""`facecli export --int8`: a statically quantised ONNX graph calibrated on face crops, checked against fp32,
carrying its metadata and the hash of the model it came from; bad input is one line and leaves no file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from facecli.checkpoint import save_model
from facecli.cli import app
from facecli.data.images import image_files
from facecli.data.synth import synth
from facecli.embed import EmbedOptions, embed_files, onnx_export
from facecli.embed.backends import onnx_config
from facecli.embed.cache import file_hash
from facecli.errors import FaceCliError
from facecli.exporting import export
from facecli.exporting.int8 import INT8_KEY, cpu_has_vnni
from facecli.identification import build_index, identify
from facecli.models import create_model
from facecli.runtime import resolve_runtime
from facecli.training import TrainOptions, train
from facecli.verification import PairsInput

runner = CliRunner()
ONNX = EmbedOptions(resolve_runtime("cpu"), "onnx", workers=0)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny trained model (a few epochs of the FaceNet ports' pairing) and the faces it trained on."""
    tmp = tmp_path_factory.mktemp("int8")
    synth(tmp / "faces", identities=6, images=5, size=32, seed=3)
    train(TrainOptions(data=tmp / "faces", run_dir=tmp / "run", loss="triplet", backbone="mobilenet", img_size=32,
                       embedding_size=16, epochs=4, workers=0, device="cpu"))  # fmt: skip
    shutil.copy(tmp / "run" / "last.safetensors", tmp / "model.safetensors")
    return tmp


def _export(world, out, **options):
    return export(checkpoint=world / "model.safetensors", out=out, int8=True, **options)


def test_an_int8_export_is_checked_carries_its_origin_and_runs_like_any_onnx_file(world, tmp_path):
    out = tmp_path / "model_int8.onnx"
    result = _export(world, out, calibrate=world / "faces")
    assert result.format == "onnx int8" and result.min_cosine >= onnx_export.TOLERANCE["int8"][1]
    graph = onnx.load(str(out))
    assert {n.op_type for n in graph.graph.node} >= {"QuantizeLinear", "DequantizeLinear"}
    props = _props(graph)
    made = json.loads(props[INT8_KEY])
    assert made["calibration_images"] == 30 and made["source_sha256"] == file_hash(world / "model.safetensors")
    assert made["reduce_range"] is (not cpu_has_vnni())
    assert json.loads(props["facecli"])["input_size"] == [32, 32]  # the preprocessing travels with it
    faces = image_files(world / "faces")
    fp32 = embed_files(world / "model.safetensors", faces, EmbedOptions(resolve_runtime("cpu"), "torch", workers=0))
    int8 = embed_files(out, faces, ONNX)
    assert (fp32.vectors * int8.vectors).sum(1).min() > 0.98
    assert out.stat().st_size < (world / "model.safetensors").stat().st_size / 2


def test_a_gallery_built_with_the_fp32_model_refuses_the_int8_one_naming_both(world, tmp_path):
    _export(world, tmp_path / "int8.onnx", calibrate=world / "faces")
    torch_cpu = EmbedOptions(resolve_runtime("cpu"), "torch", workers=0)
    build_index(checkpoint=world / "model.safetensors", out=tmp_path / "g.index", embedding=torch_cpu,
                gallery_dir=world / "faces")  # fmt: skip
    with pytest.raises(FaceCliError, match="is not the model this gallery was built with") as found:
        identify(index=tmp_path / "g.index", query=world / "faces", out=tmp_path / "who.csv", embedding=ONNX,
                 checkpoint=tmp_path / "int8.onnx")  # fmt: skip
    assert "int8.onnx" in str(found.value) and "--any-model" in str(found.value)
    on_purpose = identify(index=tmp_path / "g.index", query=world / "faces", out=tmp_path / "who.csv", embedding=ONNX,
                          checkpoint=tmp_path / "int8.onnx", any_model=True)  # fmt: skip
    assert len(on_purpose) == 30 and (on_purpose["score"] > 0.9).mean() > 0.9  # its own faces, found again


def test_cpu_flags_decide_reduce_range():
    assert cpu_has_vnni("flags : fpu avx2 avx512f avx512_vnni") and cpu_has_vnni("flags : avx2 avx_vnni")
    assert not cpu_has_vnni("flags : fpu sse4_2 avx2 avx512f")


def _refused(world, tmp_path, message, **options):
    out = tmp_path / "m.onnx"
    with pytest.raises(FaceCliError, match=message):
        _export(world, out, **options)
    assert not out.exists() and not list(tmp_path.glob(".m.onnx*"))


def test_no_calibration_images_is_one_line_and_no_file(world, tmp_path):
    (tmp_path / "empty").mkdir()
    _refused(world, tmp_path, "--calibrate: .*empty: no images in this folder", calibrate=tmp_path / "empty")
    (tmp_path / "list.txt").write_text("\n")
    _refused(world, tmp_path, "no images to calibrate on", calibrate=tmp_path / "list.txt")
    _refused(world, tmp_path, "needs --calibrate FACES")
    _refused(world, tmp_path, "no such folder or list", calibrate=tmp_path / "missing")


def test_calibration_crops_of_another_size_are_named(world, tmp_path):
    faces = tmp_path / "photos"
    shutil.copytree(world / "faces", faces)
    big = image_files(faces)[3]
    cv2.imwrite(str(big), np.zeros((64, 48, 3), np.uint8))
    _refused(world, tmp_path, f"{big.name} is 48x64; calibrate on face crops of the model's input size, 32x32",
             calibrate=faces)  # fmt: skip


def test_calibration_faces_of_the_other_colour_are_refused(world, tmp_path):
    grey = tmp_path / "grey"
    for path in image_files(world / "faces"):
        (grey / path.parent.name).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(grey / path.parent.name / path.name), cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
    for colour in ("colour", "grey"):
        model = create_model("mobilenet", input_size=32, embedding_size=16, colour=colour)
        save_model(model.eval(), tmp_path / f"{colour}.safetensors")
    refused = "30 of 30 crops are greyscale, but the model was trained on colour faces"
    with pytest.raises(FaceCliError, match=refused):
        export(checkpoint=tmp_path / "colour.safetensors", out=tmp_path / "a.onnx", int8=True, calibrate=grey)
    with pytest.raises(FaceCliError, match="30 of 30 crops are colour, but the model was trained on grey faces"):
        export(checkpoint=tmp_path / "grey.safetensors", out=tmp_path / "b.onnx", int8=True, calibrate=world / "faces")
    assert not list(tmp_path.glob("*.onnx"))
    export(checkpoint=tmp_path / "grey.safetensors", out=tmp_path / "c.onnx", int8=True, calibrate=grey)
    assert onnx_config(tmp_path / "c.onnx").colour == "grey"


def test_int8_with_torchscript_or_fp16_is_refused(world, tmp_path):
    _refused(world, tmp_path, "--int8 makes an ONNX graph", calibrate=world / "faces", fmt="torchscript")
    _refused(world, tmp_path, "--int8 makes an ONNX graph", calibrate=world / "faces", fp16=True)


def test_a_model_that_fails_the_check_leaves_no_file(world, tmp_path, monkeypatch):
    monkeypatch.setitem(onnx_export.TOLERANCE, "int8", (1e-9, 0.999999999))
    _refused(world, tmp_path, "int8 loses too much for this model", calibrate=world / "faces")


def test_the_cli_exports_int8(world, tmp_path):
    out = tmp_path / "cli_int8.onnx"
    pairs = _pairs(world, tmp_path)
    run = runner.invoke(app, ["export", "-c", str(world / "model.safetensors"), "--int8", "--calibrate",
                              str(world / "faces"), "--out", str(out), "--check-pairs", str(pairs.pairs), "--root",
                              "/", "--max-drop", "1"])  # fmt: skip
    assert run.exit_code == 0, run.output
    assert "(onnx int8, exporter torchscript (legacy, for opset 17))" in run.output and out.is_file()
    assert "int8 against fp32 on the check pairs" in run.output
    bad = runner.invoke(app, ["export", "-c", str(world / "model.safetensors"), "--int8", "--out", str(out), "--force"])
    assert bad.exit_code == 2 and "--calibrate" in bad.output and "Traceback" not in bad.output


def _pairs(world, tmp_path):
    faces = image_files(world / "faces")
    rows = [f"{a},{b},{int(a.parent == b.parent)}" for i, a in enumerate(faces) for b in faces[i + 1 :: 3]]
    (tmp_path / "pairs.csv").write_text("image1,image2,label\n" + "\n".join(rows) + "\n")
    return PairsInput(tmp_path / "pairs.csv", root=Path("/"))


def test_check_pairs_scores_both_models_and_gives_int8_its_own_threshold(world, tmp_path):
    out = tmp_path / "checked.onnx"
    result = _export(world, out, calibrate=world / "faces", check=_pairs(world, tmp_path), max_drop=1.0)
    check = result.pairs_check
    assert 0 <= check.largest_difference < 0.2 and abs(check.fp32.accuracy_mean - check.int8.accuracy_mean) < 0.2
    config = onnx_config(out)
    assert config.threshold == pytest.approx(check.threshold) and config.threshold_metric == "cosine"
    assert INT8_KEY in {p.key: p.value for p in onnx.load(str(out)).metadata_props}  # kept through the save


def test_an_int8_model_losing_more_than_max_drop_leaves_no_file(world, tmp_path, monkeypatch):
    import facecli.exporting.int8 as int8_module

    real, calls = int8_module.verification_report, []

    def worse_int8(*args, **kwargs):
        report = real(*args, **kwargs)
        calls.append(report)
        if len(calls) == 2:  # the int8 model's
            report.accuracy_mean -= 0.1
        return report

    monkeypatch.setattr(int8_module, "verification_report", worse_int8)
    _refused(world, tmp_path, r"int8 model verifies at .* lower \(--max-drop 0.005\); nothing was written",
             calibrate=world / "faces", check=_pairs(world, tmp_path))  # fmt: skip


def test_check_pairs_without_int8_and_a_bad_max_drop_are_refused_before_work(world, tmp_path):
    with pytest.raises(FaceCliError, match="--check-pairs checks an --int8 export"):
        export(checkpoint=world / "model.safetensors", out=tmp_path / "x.onnx", check=_pairs(world, tmp_path))
    _refused(world, tmp_path, "--max-drop must be", calibrate=world / "faces", max_drop=float("nan"))
    (tmp_path / "bad.csv").write_text("image1,image2,label\nnot_there.png,also_not.png,1\n")
    bad = PairsInput(tmp_path / "bad.csv")
    _refused(world, tmp_path, "resolve under none of", calibrate=world / "faces", check=bad)


def test_weights_quantised_per_tensor_are_one_note_not_a_warning_each(world, tmp_path, capfd, caplog):
    model = create_model("iresnet18", input_size=32, embedding_size=16)  # pre-activation BatchNorms stay unfolded
    save_model(model.eval(), tmp_path / "iresnet.safetensors")
    result = export(checkpoint=tmp_path / "iresnet.safetensors", out=tmp_path / "i8.onnx", int8=True,
                    calibrate=world / "faces", verify=False)  # fmt: skip
    count = json.loads(_props(onnx.load(str(tmp_path / "i8.onnx")))[INT8_KEY])["per_tensor_weights"]
    assert count > 0 and result.note.startswith(f"{count} weight(s) without a channel axis quantised per tensor")
    assert "out-of-range" not in capfd.readouterr().err + caplog.text


def _props(graph):
    return {p.key: p.value for p in graph.metadata_props}
