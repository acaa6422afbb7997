"""eval / predict / sweep on a tiny synthetic dataset with a small model, through the library and the CLI."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import facecli.embed.files as embed_files
import facecli.verification.scoring as scoring
from facecli.checkpoint import load, read_config, save_model
from facecli.cli import app
from facecli.data.annotation import annotate
from facecli.data.pairs import read_pairs
from facecli.embed import EmbedOptions, TorchEmbedder, embed_images
from facecli.errors import FaceCliError
from facecli.models import create_model
from facecli.runtime import resolve_runtime
from facecli.verification import PairsInput, evaluate, predict, sweep

runner = CliRunner()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from facecli.data.synth import synth

    tmp = tmp_path_factory.mktemp("verify")
    synth(tmp / "faces", identities=6, images=5, size=32, seed=2)
    annotate(tmp / "faces", out_dir=tmp, pairs=20, folds=2, pairs_out=tmp / "pairs.txt")
    model = create_model("mobilenet", input_size=32, embedding_size=16).eval()
    save_model(model, tmp / "model.safetensors")
    return tmp


def _opts(**kw):
    return EmbedOptions(resolve_runtime("cpu", "fp32"), batch_size=8, workers=0, **kw)


def _source(setup, **kw):
    return PairsInput(setup / "pairs.txt", setup / "faces", **kw)


def test_each_unique_image_is_embedded_once_and_cache_skips_the_model(setup, tmp_path, monkeypatch):
    calls = []
    real = embed_files.embed_images
    monkeypatch.setattr(
        embed_files, "embed_images", lambda m, paths, *a, **kw: calls.append(len(paths)) or real(m, paths, *a, **kw)
    )
    first = evaluate(
        checkpoint=setup / "model.safetensors", pairs=_source(setup), embedding=_opts(cache_dir=tmp_path), folds=2
    )
    unique = len(read_pairs(setup / "pairs.txt").images)
    assert calls == [unique] and first.forward_passes == unique == first.images
    second = evaluate(
        checkpoint=setup / "model.safetensors", pairs=_source(setup), embedding=_opts(cache_dir=tmp_path), folds=2
    )
    assert calls == [unique] and second.forward_passes == 0
    assert second.accuracy_per_fold == first.accuracy_per_fold and second.auc == first.auc


def test_cosine_and_euclidean_agree_on_unit_vectors(setup):
    cos = evaluate(checkpoint=setup / "model.safetensors", pairs=_source(setup), embedding=_opts())
    euc = evaluate(checkpoint=setup / "model.safetensors", pairs=_source(setup, metric="euclidean"), embedding=_opts())
    assert cos.auc == pytest.approx(euc.auc)  # ||a-b||^2 = 2 - 2cos: same ranking
    assert 0.0 <= cos.accuracy_mean <= 1.0 and cos.folds == 2


def test_flip_changes_embeddings_but_keeps_them_normalised(setup):
    model = TorchEmbedder(load(setup / "model.safetensors"), resolve_runtime("cpu"))
    files = sorted((setup / "faces").rglob("*.jpg"))[:4]
    plain = embed_images(model, files, 4, 0, False)
    flipped = embed_images(model, files, 4, 0, True)
    np.testing.assert_allclose(np.linalg.norm(flipped, axis=1), 1, atol=1e-5)
    assert not np.allclose(plain, flipped)


def test_missing_images_are_all_listed_before_any_work(setup, tmp_path, monkeypatch):
    pairs = tmp_path / "p.txt"
    pairs.write_text("a/x.jpg b/y.jpg 1\nc/z.jpg person_0000/person_0000_0001.jpg 0\n")
    monkeypatch.setattr(embed_files, "embed_images", lambda *a: pytest.fail("embedded before checking"))
    with pytest.raises(FaceCliError, match=r"3 image\(s\) not found.*a/x.jpg, c/z.jpg, b/y.jpg"):
        evaluate(checkpoint=setup / "model.safetensors", pairs=PairsInput(pairs, setup / "faces"), embedding=_opts())


def test_predict_keeps_rows_in_order_and_needs_a_threshold(setup, tmp_path):
    pairs = tmp_path / "test.csv"
    pd.DataFrame(
        {
            "img_1": ["person_0001/person_0001_0001.jpg", "person_0002/person_0002_0002.jpg", "nope.jpg"],
            "img_2": [
                "person_0001/person_0001_0002.jpg",
                "person_0003/person_0003_0001.jpg",
                "person_0001/person_0001_0001.jpg",
            ],
            "note": ["first", "second", "third"],
        }
    ).to_csv(pairs, index=False)
    source = PairsInput(pairs, setup / "faces")
    model = setup / "model.safetensors"
    with pytest.raises(FaceCliError, match="no calibrated threshold"):
        predict(checkpoint=model, pairs=source, embedding=_opts(), out=tmp_path / "sub.csv", skip_missing=True)
    table = predict(
        checkpoint=model, pairs=source, embedding=_opts(), out=tmp_path / "sub.csv", threshold=0.5, skip_missing=True
    )
    written = pd.read_csv(tmp_path / "sub.csv")
    assert written["note"].tolist() == ["first", "second", "third"]
    assert np.isnan(written["score"][2]) and written["score"][:2].between(-1, 1).all()
    assert (written["prediction"][:2] == (written["score"][:2] > 0.5).astype(int)).all()
    assert len(table) == 3


def test_predict_with_no_image_found_is_refused_and_unscored_rows_are_counted(setup, tmp_path):
    model, pairs = str(setup / "model.safetensors"), str(setup / "pairs.txt")
    (tmp_path / "empty").mkdir()
    args = ["predict", "-c", model, "--pairs", pairs, "--threshold", "0.5", "--skip-missing", "--backend", "torch"]
    nothing = runner.invoke(app, [*args, "--root", str(tmp_path / "empty"), "--out", str(tmp_path / "a.csv")])
    assert nothing.exit_code == 2 and "was found (--root?); nothing to score" in nothing.output
    assert not (tmp_path / "a.csv").exists()  # it used to write every row with an empty score, exit 0
    half = tmp_path / "half"
    for person in ("person_0000", "person_0001", "person_0002"):
        shutil.copytree(setup / "faces" / person, half / person)
    some = runner.invoke(app, [*args, "--root", str(half), "--out", str(tmp_path / "b.csv")])
    unscored = int(pd.read_csv(tmp_path / "b.csv")["score"].isna().sum())
    said = " ".join(some.output.split())
    assert some.exit_code == 0 and 0 < unscored and f"({unscored} unscored: an image missing)" in said


def test_sweep_picks_the_best_tar_within_the_far_and_refuses_a_far_too_small_to_measure(setup, tmp_path):
    labels = read_pairs(setup / "pairs.txt").labels
    impostors = int((labels == 0).sum())
    assert impostors == 10
    result = sweep(checkpoint=setup / "model.safetensors", pairs=_source(setup), embedding=_opts(), select="far=0.1")
    row = result.table.loc[result.table["threshold"].sub(result.chosen).abs().idxmin()]
    allowed = result.table[result.table["far"] <= 0.1]
    assert row["far"] <= 0.1 and row["tar"] == allowed["tar"].max()
    with pytest.raises(FaceCliError, match="far=0.01 needs at least 100 impostor pairs; these pairs have 10"):
        sweep(checkpoint=setup / "model.safetensors", pairs=_source(setup), embedding=_opts(), select="far=0.01")


def test_sweep_saves_threshold_that_predict_then_uses(setup, tmp_path):
    model = tmp_path / "model.safetensors"
    model.write_bytes((setup / "model.safetensors").read_bytes())
    result = sweep(
        checkpoint=model,
        pairs=_source(setup),
        embedding=_opts(),
        select="f1",
        out=tmp_path / "sweep.csv",
        save_threshold=True,
    )
    table = pd.read_csv(tmp_path / "sweep.csv")
    assert list(table.columns) == ["threshold", "accuracy", "precision", "recall", "f1", "far", "frr", "tar"]
    assert table["f1"].max() == pytest.approx(table.loc[table["threshold"].sub(result.chosen).abs().idxmin(), "f1"])
    assert (np.diff(table["far"]) <= 1e-12).all()  # FAR falls as the similarity threshold rises
    config = read_config(model)
    assert config.threshold == pytest.approx(result.chosen) and config.threshold_metric == "cosine"
    out = predict(checkpoint=model, pairs=_source(setup), embedding=_opts(), out=tmp_path / "sub.csv")
    clear = (out["score"] - result.chosen).abs() > 1e-6  # the CSV's scores are rounded to 6 decimals
    assert clear.sum() > len(out) // 2
    assert ((out["score"] > result.chosen).astype(int) == out["prediction"])[clear].all()


def test_from_scores_with_distances_and_folds(tmp_path):
    path = tmp_path / "scores.csv"
    pd.DataFrame(
        {"distance": [0.1, 0.2, 1.2, 1.3] * 3, "label": [1, 1, 0, 0] * 3, "fold": [0] * 4 + [1] * 4 + [2] * 4}
    ).to_csv(path, index=False)
    report = evaluate(from_scores=path)
    assert report.folds == 3 and report.accuracy_mean == 1.0 and report.auc == 1.0
    assert 0.2 < report.best_threshold < 1.2
    path.write_text("distance,label\n0.1,1\n0.2,7\n")
    with pytest.raises(FaceCliError, match="line 3: label must be 0 or 1"):
        evaluate(from_scores=path)


def test_cli_eval_writes_report_plot_and_scores_and_refuses_overwrite(setup, tmp_path):
    args = [
        "eval",
        "-c",
        str(setup / "model.safetensors"),
        "--pairs",
        str(setup / "pairs.txt"),
        "--root",
        str(setup / "faces"),
        "--device",
        "cpu",
        "--workers",
        "0",
        "--folds",
        "2",
        "--report",
        str(tmp_path / "r.json"),
        "--plot",
        str(tmp_path / "roc.png"),
        "--scores",
        str(tmp_path / "s.csv"),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["pairs"] == 20 and len(report["accuracy_per_fold"]) == 2
    assert report["images"] == report["forward_passes"] == len(read_pairs(setup / "pairs.txt").images)
    assert (tmp_path / "roc.png").read_bytes()[:4] == b"\x89PNG"
    assert len(pd.read_csv(tmp_path / "s.csv")) == 20
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "--force" in result.output


def test_large_runs_embed_into_a_memory_mapped_array_and_score_in_blocks(setup, monkeypatch):
    plain = evaluate(checkpoint=setup / "model.safetensors", pairs=_source(setup), embedding=_opts(), folds=2)
    arrays = []
    real = embed_files.embedding_array
    monkeypatch.setattr(embed_files, "embedding_array", lambda *a: arrays.append(real(*a)) or arrays[-1])
    monkeypatch.setattr(embed_files, "MEMMAP_ROWS", 4)
    monkeypatch.setattr(scoring, "SCORE_BLOCK", 3)
    mapped = evaluate(checkpoint=setup / "model.safetensors", pairs=_source(setup), embedding=_opts(), folds=2)
    assert isinstance(arrays[0], np.memmap)
    assert mapped.accuracy_per_fold == plain.accuracy_per_fold and mapped.auc == pytest.approx(plain.auc)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_a_scores_file_written_by_eval_evaluates_to_the_same_numbers(setup, tmp_path, metric):
    direct = evaluate(
        checkpoint=setup / "model.safetensors",
        pairs=_source(setup, metric=metric),
        embedding=_opts(),
        folds=2,
        scores=tmp_path / "scores.csv",
    )
    column = {"cosine": "score", "euclidean": "distance"}[metric]
    assert column in pd.read_csv(tmp_path / "scores.csv").columns
    again = evaluate(from_scores=tmp_path / "scores.csv", folds=2)
    assert again.metric == metric  # one vocabulary: a distance column is the euclidean metric, same grid
    assert again.threshold_per_fold == pytest.approx(direct.threshold_per_fold)
    assert again.accuracy_per_fold == direct.accuracy_per_fold and again.auc == pytest.approx(direct.auc)
