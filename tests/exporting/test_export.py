"""Every backbone exports to ONNX and TorchScript and matches PyTorch; the ONNX backend matches eval."""

import json

import numpy as np
import onnx
import pytest
import torch
from typer.testing import CliRunner

from facecli.checkpoint import load, save_model
from facecli.cli import app
from facecli.embed import EmbedOptions
from facecli.embed.backends import onnx_config
from facecli.errors import FaceCliError
from facecli.exporting.exporter import TORCHSCRIPT_CONFIG, export
from facecli.models import create_model
from facecli.registry import BACKBONES
from facecli.runtime import resolve_runtime
from facecli.verification.scoring import PairsInput, check_pairs, score_pairs

SMALLEST = [(name, BACKBONES.get(name).min_size) for name in BACKBONES.names()] + [("timm/resnet18", 32)]


def _checkpoint(tmp_path, name="mobilenet", size=32):
    model = create_model(name, input_size=size, embedding_size=16)
    model.train()
    with torch.no_grad():
        for _ in range(3):  # give BatchNorm non-trivial running statistics
            model(torch.randn(4, 3, size, size) * 2 + 0.5)
    return save_model(model.eval(), tmp_path / "model.safetensors")


def _score(model, source, opts):
    return score_pairs(model, check_pairs(source), source.metric, opts)


@pytest.mark.parametrize(("name", "size"), SMALLEST)
@pytest.mark.parametrize("fmt", ["onnx", "pt2", "torchscript"])
def test_every_backbone_exports_and_verifies(tmp_path, name, size, fmt):
    ckpt = _checkpoint(tmp_path, name, size)
    result = export(checkpoint=ckpt, fmt=fmt, out=tmp_path / "out.bin")
    assert result.max_abs_diff < 1e-4 and result.min_cosine > 0.9999 and result.inputs_checked == 8
    assert result.exporter == ("torch.export" if fmt == "onnx" else None)  # no backbone needs the legacy one


def test_onnx_metadata_carries_preprocessing_and_batch_is_dynamic(tmp_path):
    ckpt = _checkpoint(tmp_path)
    export(checkpoint=ckpt, fmt="onnx", out=tmp_path / "m.onnx", opset=17)  # below torch.export's: the legacy one
    graph = onnx.load(str(tmp_path / "m.onnx"))
    props = {p.key: p.value for p in graph.metadata_props}
    assert props["facecli_exporter"].startswith("torchscript (legacy")
    assert props["input_size"] == "32x32" and props["channel_order"] == "RGB" and props["embedding_size"] == "16"
    assert "mean=[0.0, 0.0, 0.0]" in props["normalisation"] and props["resize"] == "letterbox"
    assert onnx_config(tmp_path / "m.onnx").backbone == "mobilenet"
    assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert graph.opset_import[0].version == 17


def test_static_batch_fp16_and_torchscript_extra_files(tmp_path):
    ckpt = _checkpoint(tmp_path)
    static = export(checkpoint=ckpt, fmt="onnx", out=tmp_path / "s.onnx", static_batch=3)
    graph = onnx.load(str(tmp_path / "s.onnx"))
    assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 3 and static.max_abs_diff < 1e-4
    half = export(checkpoint=ckpt, fmt="onnx", out=tmp_path / "h.onnx", fp16=True)
    assert half.min_cosine > 0.999 and half.max_abs_diff > 0  # really ran in half precision
    weights = onnx.load(str(tmp_path / "h.onnx")).graph.initializer
    assert any(w.data_type == onnx.TensorProto.FLOAT16 for w in weights)
    export(checkpoint=ckpt, fmt="torchscript", out=tmp_path / "m.pt")
    extra = {TORCHSCRIPT_CONFIG: ""}
    torch.jit.load(str(tmp_path / "m.pt"), _extra_files=extra)
    assert json.loads(extra[TORCHSCRIPT_CONFIG])["input_size"] == [32, 32]
    export(checkpoint=ckpt, fmt="pt2", out=tmp_path / "m.pt2")
    extra = {TORCHSCRIPT_CONFIG: ""}
    program = torch.export.load(str(tmp_path / "m.pt2"), extra_files=extra)
    assert json.loads(extra[TORCHSCRIPT_CONFIG])["backbone"] == "mobilenet"
    assert program.module()(torch.randn(5, 3, 32, 32)).shape == (5, 16)  # any batch size


def test_verification_on_real_face_images(tmp_path, reference):
    ckpt = _checkpoint(tmp_path)
    faces = sorted((reference / "faces").glob("aligned_*.png"))
    result = export(checkpoint=ckpt, fmt="onnx", out=tmp_path / "m.onnx", verify_images=faces)
    assert result.inputs_checked == 4 + len(faces) and result.max_abs_diff < 1e-4


def test_failed_verification_leaves_no_file(tmp_path, monkeypatch):
    import facecli.exporting.exporter as export_module

    ckpt = _checkpoint(tmp_path)
    monkeypatch.setattr(export_module, "_run_exported", lambda path, fmt, x: np.zeros((len(x), 16), np.float32))
    with pytest.raises(FaceCliError, match="disagrees with PyTorch"):
        export(checkpoint=ckpt, fmt="onnx", out=tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists() and not list(tmp_path.glob("*.tmp"))


def test_onnx_backend_agrees_with_torch_for_eval_and_predict(tmp_path):
    from facecli.data.annotation import annotate
    from facecli.data.synth import synth

    synth(tmp_path / "faces", identities=4, images=4, size=32, seed=3)
    annotate(tmp_path / "faces", out_dir=tmp_path, pairs=8, folds=2, pairs_out=tmp_path / "pairs.txt")
    ckpt = _checkpoint(tmp_path)
    export(checkpoint=ckpt, fmt="onnx", out=tmp_path / "m.onnx")
    source = PairsInput(tmp_path / "pairs.txt", tmp_path / "faces")
    runtime = resolve_runtime("cpu")
    by_torch = _score(ckpt, source, EmbedOptions(runtime, "torch", workers=0))
    by_onnx = _score(tmp_path / "m.onnx", source, EmbedOptions(runtime, "onnx", workers=0, flip=False))
    assert np.abs(by_torch.scores - by_onnx.scores).max() < 1e-4
    flipped_t = _score(ckpt, source, EmbedOptions(runtime, "torch", workers=0, flip=True))
    flipped_o = _score(tmp_path / "m.onnx", source, EmbedOptions(runtime, "onnx", workers=0, flip=True))
    assert np.abs(flipped_t.scores - flipped_o.scores).max() < 1e-4
    on_onnx = ["-c", str(tmp_path / "m.onnx"), "--backend", "onnx", "--pairs", str(tmp_path / "pairs.txt")]
    on_onnx += ["--root", str(tmp_path / "faces"), "--workers", "0"]
    result = CliRunner().invoke(app, ["sweep", *on_onnx, "--save-threshold"])
    assert result.exit_code == 0, result.output
    assert onnx_config(tmp_path / "m.onnx").threshold is not None
    result = CliRunner().invoke(app, ["predict", *on_onnx, "--out", str(tmp_path / "sub.csv")])
    assert result.exit_code == 0, result.output


def test_cli_export_reports_the_check(tmp_path):
    ckpt = _checkpoint(tmp_path)
    result = CliRunner().invoke(app, ["export", "-c", str(ckpt), "--format", "onnx", "--out", str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output
    assert "verified on 8 inputs" in result.output
    result = CliRunner().invoke(app, ["export", "-c", str(ckpt), "--format", "tflite", "--out", str(tmp_path / "m.x")])
    assert result.exit_code == 2 and "unknown export format" in result.output


def test_each_exporter_falls_back_to_the_other_and_says_so(tmp_path, monkeypatch):
    import facecli.embed.onnx_export as onnx_export

    ckpt = _checkpoint(tmp_path)

    def cannot(*args, **kwargs):
        raise RuntimeError("cannot trace this")

    with monkeypatch.context() as patched:  # torch.export's exporter fails: the legacy one writes the file
        patched.setitem(onnx_export.EXPORTERS, "torch.export", cannot)
        result = export(checkpoint=ckpt, fmt="onnx", out=tmp_path / "legacy.onnx")
    props = {p.key: p.value for p in onnx.load(str(tmp_path / "legacy.onnx")).metadata_props}
    assert result.exporter == props["facecli_exporter"]
    assert result.exporter.startswith("torchscript (legacy); torch.export failed: cannot trace this")
    assert result.max_abs_diff < 1e-4
    model = load(ckpt)
    with monkeypatch.context() as patched:  # the cache's first choice, the legacy one, fails (or is gone)
        patched.setitem(onnx_export.EXPORTERS, "legacy", cannot)
        used = onnx_export.export_onnx(model, tmp_path / "cache.onnx", prefer="legacy")
    assert used == "torch.export; torchscript (legacy) failed: cannot trace this"
    with monkeypatch.context() as patched, pytest.raises(RuntimeError, match="cannot trace"):
        patched.setitem(onnx_export.EXPORTERS, "legacy", cannot)
        patched.setitem(onnx_export.EXPORTERS, "torch.export", cannot)
        onnx_export.export_onnx(model, tmp_path / "none.onnx")
    assert not (tmp_path / "none.onnx").exists()
