"""Face quality from the feature norm: recorded in model files of MagFace/AdaFace runs, computed by both backends
(the ONNX graph carries it as a second output), kept by the embedding cache, written by embed, reported by
compare and identify, gated by --min-quality, and the error-versus-reject curve eval draws from it."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from facecli.checkpoint import read_config, save_model
from facecli.cli import app
from facecli.data.images import image_files
from facecli.data.synth import synth
from facecli.embed import EmbedOptions, OnnxEmbedder, TorchEmbedder, embed_files
from facecli.embed.onnx_export import export_onnx
from facecli.errors import FaceCliError
from facecli.identification import build_index, identify
from facecli.losses.margin import quality_of
from facecli.models import ModelConfig, create_model
from facecli.runtime import resolve_runtime
from facecli.verification.reject_curve import error_versus_reject

runner = CliRunner()
CPU = resolve_runtime("cpu")
TORCH = EmbedOptions(CPU, "torch", workers=0)


def _model(quality: str | None):
    model = create_model("mobilenet", input_size=32, embedding_size=16, quality=quality)
    model.train()
    with torch.no_grad():  # batch-norm statistics that differ from the identity: norms that differ per image
        model(torch.randn(8, 3, 32, 32) * 3)
    return model.eval()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quality")
    save_model(_model("feature_norm"), tmp / "scored.safetensors")
    save_model(_model(None), tmp / "plain.safetensors")
    synth(tmp / "faces", identities=3, images=3, size=32, seed=4)
    return tmp


def _files(world):
    return image_files(world / "faces")


def test_only_magface_and_adaface_runs_record_a_quality_score_and_configs_refuse_unknown_ones():
    assert quality_of("magface") == quality_of("adaface") == "feature_norm"
    assert quality_of("arcface") is None and quality_of("subcenter_arcface") is None
    config = _model("feature_norm").config.to_dict()
    assert ModelConfig.from_dict(config).quality == "feature_norm"
    with pytest.raises(FaceCliError, match="unknown quality score 'sharpness'"):
        ModelConfig.from_dict({**config, "quality": "sharpness"})


@pytest.mark.parametrize("flip", [False, True])
def test_quality_is_the_feature_norm_and_the_embedding_is_unchanged(flip):
    model = _model("feature_norm")
    x = torch.randn(5, 3, 32, 32)
    vectors, quality = TorchEmbedder(model, CPU).embed_scored(x, flip)
    inputs = [x, x.flip(3)] if flip else [x]
    with torch.no_grad():  # as before quality existed: the views' unit embeddings summed, then normalised
        expected = torch.nn.functional.normalize(sum(model(view) for view in inputs), dim=1)
        norms = torch.stack([model.features(view).norm(dim=1) for view in inputs])
    np.testing.assert_allclose(quality, norms.mean(0).numpy(), rtol=1e-5)
    np.testing.assert_allclose(vectors, expected.numpy(), atol=1e-5)
    assert quality.std() > 0  # the images differ in quality


def test_the_onnx_graph_outputs_the_quality_only_for_a_model_with_one(world, tmp_path):
    for kind in ("scored", "plain"):
        model = _model("feature_norm" if kind == "scored" else None)
        export_onnx(model, tmp_path / f"{kind}.onnx")
        outputs = [o.name for o in onnx.load(str(tmp_path / f"{kind}.onnx")).graph.output]
        assert outputs == (["embedding", "quality"] if kind == "scored" else ["embedding"])
        x = torch.randn(6, 3, 32, 32)
        onnx_vectors, onnx_quality = OnnxEmbedder(tmp_path / f"{kind}.onnx").embed_scored(x, flip=True)
        torch_vectors, torch_quality = TorchEmbedder(model, CPU).embed_scored(x, flip=True)
        np.testing.assert_allclose(onnx_vectors, torch_vectors, atol=1e-4)
        if kind == "scored":
            np.testing.assert_allclose(onnx_quality, torch_quality, rtol=1e-4)


def test_backends_and_the_cache_give_the_same_quality(world, tmp_path):
    files = _files(world)
    fresh = embed_files(world / "scored.safetensors", files, TORCH)
    assert fresh.quality is not None and fresh.quality.shape == (len(files),)
    cached_options = EmbedOptions(CPU, "torch", workers=0, cache_dir=tmp_path / "cache")
    first = embed_files(world / "scored.safetensors", files[:4], cached_options)
    again = embed_files(world / "scored.safetensors", files, cached_options)
    assert first.embedded == 4 and again.embedded == len(files) - 4
    np.testing.assert_allclose(again.quality, fresh.quality, rtol=1e-5)
    np.testing.assert_allclose(again.vectors, fresh.vectors, atol=1e-6)
    onnx = embed_files(world / "scored.safetensors", files, EmbedOptions(CPU, "auto", workers=0))
    np.testing.assert_allclose(onnx.quality, fresh.quality, rtol=1e-4)
    assert embed_files(world / "plain.safetensors", files, TORCH).quality is None


def test_embed_writes_a_quality_column(world, tmp_path):
    out = tmp_path / "e.npy"
    run = runner.invoke(
        app, ["embed", str(world / "faces"), "-c", str(world / "scored.safetensors"), "--out", str(out),
              "--device", "cpu", "--workers", "0", "--backend", "torch"],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    table = pd.read_csv(tmp_path / "e.csv")
    expected = embed_files(world / "scored.safetensors", [Path(p) for p in table["path"]], TORCH)
    np.testing.assert_allclose(table["quality"], expected.quality, rtol=1e-5)


def _compare(world, model, *extra):
    a, b = _files(world)[0], _files(world)[4]
    return runner.invoke(
        app, ["compare", str(a), str(b), "-c", str(world / model), "--device", "cpu", "--threshold", "-1", *extra]
    )


def test_compare_reports_quality_and_refuses_faces_under_min_quality(world):
    kept = _compare(world, "scored.safetensors", "--json", "--min-quality", "0")
    assert kept.exit_code == 0, kept.output
    (pair,) = json.loads(kept.output[kept.output.index("{") :])["pairs"]
    assert pair["quality_a"] > 0 and pair["quality_b"] > 0 and pair["same"] is True and pair["refused"] is None
    refused = _compare(world, "scored.safetensors", "--json", "--min-quality", "1e9")
    assert refused.exit_code == 1  # not verified as the same person
    (pair,) = json.loads(refused.output[refused.output.index("{") :])["pairs"]
    assert pair["same"] is None and "is under --min-quality 1e+09" in pair["refused"]
    plain = _compare(world, "plain.safetensors", "--json")
    assert json.loads(plain.output[plain.output.index("{") :])["pairs"][0]["quality_a"] is None


@pytest.mark.parametrize("value, message", [("nan", "--min-quality"), ("-1", "--min-quality")])
def test_min_quality_must_be_a_number_at_least_zero(world, value, message):
    run = _compare(world, "scored.safetensors", "--min-quality", value)
    assert run.exit_code == 2 and message in run.output and "Traceback" not in run.output


def test_min_quality_on_a_model_without_a_score_is_one_line_before_any_work(world, monkeypatch):
    compare_module = importlib.import_module("facecli.photos.compare")
    monkeypatch.setattr(compare_module, "open_model", lambda *a: pytest.fail("the model was opened"))
    run = _compare(world, "plain.safetensors", "--min-quality", "5")
    assert run.exit_code == 2
    assert "plain.safetensors has no quality score (only models trained with --loss magface" in " ".join(
        run.output.split()
    )


def test_identify_lists_quality_and_refuses_low_quality_queries(world, tmp_path):
    build_index(checkpoint=world / "scored.safetensors", out=tmp_path / "g.index", embedding=TORCH,
                gallery_dir=world / "faces")  # fmt: skip
    quality = embed_files(world / "scored.safetensors", _files(world), TORCH).quality
    cut = float(np.median(quality))
    table = identify(index=tmp_path / "g.index", query=world / "faces", out=tmp_path / "who.csv", embedding=TORCH,
                     top_k=1, min_quality=cut)  # fmt: skip
    exact = dict(zip(map(str, _files(world)), quality, strict=True))  # the CSV's quality is rounded to 4 places
    low = table["query"].map(exact) < cut
    assert low.any() and (~low).any()
    assert (table.loc[low, "identity"] == "refused").all() and table.loc[low, "refused"].str.contains("under").all()
    assert (table.loc[~low, "identity"] != "refused").all() and (table.loc[~low, "refused"] == "").all()
    with pytest.raises(FaceCliError, match="has no quality score"):
        build_index(checkpoint=world / "plain.safetensors", out=tmp_path / "p.index", embedding=TORCH,
                    gallery_dir=world / "faces")  # fmt: skip
        identify(index=tmp_path / "p.index", query=world / "faces", out=tmp_path / "p.csv", embedding=TORCH,
                 min_quality=1.0)  # fmt: skip


def test_the_reject_curve_falls_when_low_quality_pairs_are_the_errors():
    rng = np.random.default_rng(0)
    labels = np.repeat([1, 0], 500)
    quality = rng.uniform(0, 1, 1000)
    noise = rng.normal(0, 1, 1000) * (1 - quality) ** 2 * 3  # the worse the pair, the noisier its score
    scores = np.where(labels == 1, 0.5, -0.5) + noise
    curve = error_versus_reject(scores, labels, quality)
    assert curve.rejected[0] == 0 and curve.kept[0] == 1000 and curve.kept[-1] == 500
    assert curve.error[-1] < curve.error[0] / 2 and all(np.diff(curve.error) <= 0.01)
    assert curve.error[0] == pytest.approx(np.mean((scores > curve.threshold) != (labels == 1)))
    flat = error_versus_reject(scores, labels, rng.uniform(0, 1, 1000))  # a score that means nothing: no fall
    assert abs(flat.error[-1] - flat.error[0]) < 0.05


def test_eval_of_a_model_with_a_quality_score_reports_the_curve(world, tmp_path):
    files = _files(world)
    pairs = tmp_path / "pairs.csv"
    rows = [(a, b, int(a.parent == b.parent)) for i, a in enumerate(files) for b in files[i + 1 :]]
    pd.DataFrame(rows, columns=["image1", "image2", "label"]).to_csv(pairs, index=False)
    run = runner.invoke(
        app, ["eval", "-c", str(world / "scored.safetensors"), "--pairs", str(pairs), "--root", "/", "--folds", "2",
              "--device", "cpu", "--workers", "0", "--report", str(tmp_path / "r.json"), "--plot",
              str(tmp_path / "r.png"), "--scores", str(tmp_path / "s.csv")],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    assert "error vs reject" in run.output
    curve = json.loads((tmp_path / "r.json").read_text())["reject_curve"]
    assert curve["rejected"][0] == 0 and curve["kept"][0] == len(rows)
    assert "quality" in pd.read_csv(tmp_path / "s.csv").columns and (tmp_path / "r.png").stat().st_size > 0
    again = runner.invoke(app, ["eval", "--from-scores", str(tmp_path / "s.csv"), "--folds", "2", "--report",
                                str(tmp_path / "again.json")])  # fmt: skip
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "again.json").read_text())["reject_curve"] == curve
    plain = read_config(world / "plain.safetensors")
    assert plain.quality is None
