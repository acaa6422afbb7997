"""1:N identification: index, incremental add/remove, identify (open set), eval-identify, bad input."""

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import facecli.embed.files as embed_files
from facecli.checkpoint import save_model
from facecli.cli import app
from facecli.data.synth import synth
from facecli.embed import EmbedOptions
from facecli.errors import FaceCliError
from facecli.identification import Gallery, build_index, evaluate_identification, identify
from facecli.models import create_model
from facecli.runtime import resolve_runtime

RT = resolve_runtime("cpu")
EMB = EmbedOptions(RT, workers=0)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gallery")
    synth(tmp / "all", identities=5, images=4, size=32, seed=4)
    for name in ("gallery", "probes", "extra"):
        (tmp / name).mkdir()
    people = sorted(p.name for p in (tmp / "all").iterdir())
    for person in people[:3]:  # enrolled: 2 gallery images, 2 probes each
        files = sorted((tmp / "all" / person).iterdir())
        for folder, chosen in (("gallery", files[:2]), ("probes", files[2:])):
            (tmp / folder / person).mkdir()
            for f in chosen:
                shutil.copy(f, tmp / folder / person / f.name)
    shutil.copytree(tmp / "all" / people[3], tmp / "probes" / people[3])  # never enrolled: open set
    shutil.copytree(tmp / "all" / people[4], tmp / "extra" / people[4])
    model = create_model("mobilenet", input_size=32, embedding_size=16)
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, 32, 32))
    save_model(model.eval(), tmp / "model.safetensors")
    return tmp


def test_search_matches_brute_force_and_templates_average():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(12, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    names = [f"id{i // 3}" for i in range(12)]
    g = Gallery(emb, names, [str(i) for i in range(12)], "m", "h")
    q = emb[[1, 7]] + 0.01
    scores, top = g.search(q, 2)
    sims = q @ emb.T
    for row in range(2):
        best = {n: sims[row][[i for i in range(12) if names[i] == n]].max() for n in set(names)}
        expected = sorted(best, key=best.get, reverse=True)[:2]
        assert top[row] == expected
        np.testing.assert_allclose(scores[row], [best[n] for n in expected], rtol=1e-5)
    mean = Gallery(emb, names, [str(i) for i in range(12)], "m", "h", template="mean")
    template = emb[:3].mean(0) / np.linalg.norm(emb[:3].mean(0))
    s, t = mean.search(template[None], 1)
    assert t[0] == ["id0"] and s[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_index_add_remove_without_reembedding(world, tmp_path, monkeypatch):
    out = tmp_path / "g.index"
    g, embedded, _ = build_index(
        checkpoint=world / "model.safetensors", out=out, embedding=EMB, gallery_dir=world / "gallery"
    )
    assert embedded == 6 and len(set(g.identities)) == 3
    calls = []
    real = embed_files.embed_images
    monkeypatch.setattr(
        embed_files, "embed_images", lambda e, files, *a, **kw: calls.append(len(files)) or real(e, files, *a, **kw)
    )
    g, embedded, _ = build_index(out=out, embedding=EMB, add=world / "extra")
    assert calls == [4] and embedded == 4 and len(g.identities) == 10
    g, embedded, _ = build_index(out=out, embedding=EMB, add=world / "extra")  # same images again: nothing new
    assert calls == [4] and len(g.identities) == 10
    g, _, _ = build_index(out=out, embedding=EMB, remove=[sorted(set(g.identities))[-1]])
    assert len(g.identities) == 6 and Gallery.open(out).identities == g.identities
    with pytest.raises(FaceCliError, match="no identity nobody"):
        build_index(out=out, embedding=EMB, remove=["nobody"])


def test_identify_is_open_set_and_eval_identify_reports_ranks(world, tmp_path):
    out = tmp_path / "g.index"
    build_index(checkpoint=world / "model.safetensors", out=out, embedding=EMB, gallery_dir=world / "gallery")
    table = identify(index=out, query=world / "probes", out=tmp_path / "res.csv", embedding=EMB, top_k=2, threshold=1.0)
    assert (table["identity"] == "unknown").all() and len(table) == 10  # no probe is a gallery image: none is 1
    table = identify(index=out, query=world / "probes", out=tmp_path / "res2.csv", embedding=EMB, top_k=2)
    assert (table["identity"] == table["top1"]).all() and (table["score1"] >= table["score2"]).all()
    written = pd.read_csv(tmp_path / "res2.csv")
    assert list(written.columns[:3]) == ["query", "identity", "score"]
    report = evaluate_identification(index=out, probes=world / "probes", embedding=EMB, plot=tmp_path / "cmc.png")
    assert (report.probes_known, report.probes_unknown) == (6, 4)
    assert 0 <= report.rank1 <= report.rank5 <= 1 and report.cmc[-1] == 1.0  # rank 3 of 3 always hits
    assert list(report.dir_at_far) == []  # 4 unknown probes cannot resolve FAR 0.1
    assert (tmp_path / "cmc.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_input_gets_clear_messages(world, tmp_path):
    out = tmp_path / "g.index"
    build_index(checkpoint=world / "model.safetensors", out=out, embedding=EMB, gallery_dir=world / "gallery")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(FaceCliError, match="not an image"):
        identify(index=out, query=tmp_path / "notes.txt", out=tmp_path / "r.csv", embedding=EMB)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FaceCliError, match="no identity folders"):
        build_index(
            checkpoint=world / "model.safetensors",
            out=tmp_path / "e.index",
            embedding=EMB,
            gallery_dir=tmp_path / "empty",
        )
    other = create_model("mobilenet", input_size=32, embedding_size=16)
    save_model(other, tmp_path / "other.safetensors")
    with pytest.raises(FaceCliError, match="not the model this gallery was built with"):
        identify(
            index=out,
            query=world / "probes",
            out=tmp_path / "r.csv",
            embedding=EMB,
            checkpoint=tmp_path / "other.safetensors",
        )
    with pytest.raises(FaceCliError, match="--force"):
        build_index(checkpoint=world / "model.safetensors", out=out, embedding=EMB, gallery_dir=world / "gallery")
    with pytest.raises(FaceCliError, match="needs at least"):
        build_index(
            checkpoint=world / "model.safetensors",
            out=tmp_path / "ivf.index",
            embedding=EMB,
            gallery_dir=world / "gallery",
            index_type="ivf",
        )


def test_ivf_index_is_saved_trained(world, tmp_path):
    rng = np.random.default_rng(2)
    emb = rng.normal(size=(64, 16)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    names = [f"id{i % 8}" for i in range(64)]
    g = Gallery(emb, names, [str(i) for i in range(64)], "m", "h", template="mean", index_type="ivf", nlist=4)
    g.save(tmp_path / "ivf.index")
    reopened = Gallery.open(tmp_path / "ivf.index")
    assert reopened._index is not None and reopened._index.is_trained
    assert reopened.search(emb[:5], 3)[1] == g.search(emb[:5], 3)[1]


def test_ivf_index_finds_the_exact_neighbours_on_clustered_data():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(40, 16))
    emb = (centres[rng.integers(0, 40, 4000)] + rng.normal(scale=0.05, size=(4000, 16))).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    names = [f"id{i}" for i in range(4000)]
    exact = Gallery(emb, names, names, "m", "h")
    approx = Gallery(emb, names, names, "m", "h", index_type="ivf", nlist=40, nprobe=4)
    queries = emb[:200] + 0.001
    recall = np.mean(
        [a[0] == b[0] for a, b in zip(exact.search(queries, 1)[1], approx.search(queries, 1)[1], strict=True)]
    )
    assert recall > 0.95


def test_cli_index_and_identify(world, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "index",
            str(world / "gallery"),
            "-c",
            str(world / "model.safetensors"),
            "--out",
            str(tmp_path / "g.index"),
            "--workers",
            "0",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "3 identities, 6 images" in " ".join(result.output.split())
    result = runner.invoke(
        app,
        [
            "identify",
            str(world / "probes"),
            "--index",
            str(tmp_path / "g.index"),
            "--out",
            str(tmp_path / "r.csv"),
            "--workers",
            "0",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["index", "--out", str(tmp_path / "g.index")])
    assert result.exit_code == 2 and "needs GALLERY_DIR" in result.output


def test_one_image_per_identity_is_allowed_and_unusable_gallery_is_refused(world, tmp_path):
    single = tmp_path / "single"
    for person in sorted(p.name for p in (world / "gallery").iterdir()):
        (single / person).mkdir(parents=True)
        first = sorted((world / "gallery" / person).iterdir())[0]
        shutil.copy(first, single / person / first.name)
    g, embedded, _ = build_index(
        checkpoint=world / "model.safetensors",
        out=tmp_path / "s.index",
        embedding=EMB,
        gallery_dir=single,
        template="mean",
    )
    assert embedded == 3 and len(set(g.identities)) == 3
    broken = tmp_path / "broken" / "someone"
    broken.mkdir(parents=True)
    (broken / "x.jpg").write_text("not an image")
    with pytest.raises(FaceCliError, match="no usable images"):
        build_index(
            checkpoint=world / "model.safetensors",
            out=tmp_path / "b.index",
            embedding=EMB,
            gallery_dir=tmp_path / "broken",
        )


def _unit(*rows):
    vectors = np.asarray(rows, np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("template", ["image", "mean"])
def test_gallery_add_and_remove_change_what_search_finds(template):
    gallery = Gallery(_unit([1, 0, 0]), ["ann"], ["a.jpg"], checkpoint="m", model_hash="h", template=template)
    query = _unit([0, 1, 0.1])
    assert gallery.search(query, 1)[1] == [["ann"]]
    gallery.add(_unit([0, 1, 0]), ["bob"], ["b.jpg"])
    assert gallery.search(query, 1)[1] == [["bob"]]  # the index built before the add is not reused
    with pytest.raises(FaceCliError, match="no identity carl"):
        gallery.remove(["bob", "carl"])
    assert gallery.identities == ["ann", "bob"] and len(gallery.embeddings) == 2  # nothing dropped
    gallery.remove(["bob"])
    assert gallery.paths == ["a.jpg"] and gallery.search(query, 1)[1] == [["ann"]]


def test_a_saved_threshold_keeps_the_gallery_and_other_weights_or_preprocessing_do_not(world, tmp_path):
    import dataclasses

    from facecli.checkpoint import load, update_config
    from facecli.identification.gallery import Gallery as Stored

    model = tmp_path / "model.safetensors"
    shutil.copy(world / "model.safetensors", model)
    out = tmp_path / "g.index"
    build_index(checkpoint=model, out=out, embedding=EMB, gallery_dir=world / "gallery")
    update_config(model, threshold=0.4, threshold_metric="cosine")  # what sweep --save-threshold writes
    found = identify(index=out, query=world / "probes", out=tmp_path / "r.csv", embedding=EMB)
    probes = len(list((world / "probes").rglob("*.jpg")))
    assert len(found) == probes
    legacy = Stored.open(out)  # a gallery from before model identities: it holds the file's hash
    from facecli.embed.cache import file_hash

    legacy.model_hash = file_hash(model)
    legacy.save(tmp_path / "legacy.index")
    assert len(identify(index=tmp_path / "legacy.index", query=world / "probes", out=tmp_path / "l.csv",
                        embedding=EMB)) == probes  # fmt: skip
    resized = load(model)
    resized.config = dataclasses.replace(resized.config, mean=(0.5, 0.5, 0.5))  # same weights, other input
    save_model(resized, tmp_path / "other.safetensors")
    with pytest.raises(FaceCliError, match=r"not the model this gallery was built with \(model \w+, this is \w+\)"):
        identify(index=out, query=world / "probes", out=tmp_path / "o.csv", embedding=EMB,
                 checkpoint=tmp_path / "other.safetensors")  # fmt: skip


def test_an_empty_gallery_or_one_of_another_dimension_is_named(world, tmp_path):
    from facecli.identification.gallery import Gallery as Stored

    out = tmp_path / "g.index"
    build_index(checkpoint=world / "model.safetensors", out=out, embedding=EMB, gallery_dir=world / "gallery")
    gallery = Stored.open(out)
    narrow = Stored(gallery.embeddings[:, :4].copy(), gallery.identities, gallery.paths, gallery.checkpoint,
                    gallery.model_hash)  # fmt: skip
    narrow.save(tmp_path / "narrow.index")
    with pytest.raises(FaceCliError, match="its embeddings have 4 dimensions, .*model.safetensors's 16"):
        identify(index=tmp_path / "narrow.index", query=world / "probes", out=tmp_path / "r.csv", embedding=EMB)
    gallery.remove(sorted(set(gallery.identities)))
    gallery.save(tmp_path / "empty.index")
    with pytest.raises(FaceCliError, match="holds no faces"):
        identify(index=tmp_path / "empty.index", query=world / "probes", out=tmp_path / "r.csv", embedding=EMB)
