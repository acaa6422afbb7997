"""`facecli compare` and `facecli embed`: raw photos are aligned as the model expects, crops are used as they
are; exit codes, JSON, the picture; bad input is one line naming the file; `--version`."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from facecli import __version__
from facecli.checkpoint import save_model
from facecli.cli import app
from facecli.data.synth import synth
from facecli.embed import EmbedOptions, embed_files
from facecli.models import create_model
from facecli.runtime import resolve_runtime

runner = CliRunner()
CPU = ["--device", "cpu", "--workers", "0"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("photos")
    save_model(create_model("mobilenet", input_size=64, embedding_size=16).eval(), tmp / "model.safetensors")
    synth(tmp / "faces", identities=3, images=3, size=64, seed=4)  # crops of the model's input size
    return tmp


def _compare(world, a, b, *extra):
    return runner.invoke(
        app, ["compare", str(a), str(b), "-c", str(world / "model.safetensors"), "--device", "cpu", *extra]
    )


def test_a_raw_photo_against_an_aligned_crop_with_the_picture_and_exit_codes(world, reference, tmp_path):
    photo, crop = reference / "faces" / "photo_kate_siegel.jpg", reference / "faces" / "aligned_kate_siegel.png"
    same = _compare(world, photo, crop, "--threshold", "-1", "--show", str(tmp_path / "pair.png"))
    assert same.exit_code == 0, same.output
    assert "same" in same.output and "threshold -1 (cosine, --threshold)" in " ".join(same.output.split())
    assert cv2.imread(str(tmp_path / "pair.png")) is not None
    different = _compare(world, photo, crop, "--threshold", "1.0", "--json")
    assert different.exit_code == 1
    found = json.loads(different.output[different.output.index("{") :])
    (pair,) = found["pairs"]
    assert pair["same"] is False and pair["metric"] == "cosine" and -1 <= pair["score"] <= 1
    undecided = _compare(world, photo, crop)
    assert undecided.exit_code == 0 and "no threshold" in undecided.output


def test_a_group_photo_reports_its_faces_and_folders_compare_every_image(world, reference):
    group = _compare(world, reference / "faces" / "multiface.jpg", reference / "faces" / "1_001.jpg")
    assert group.exit_code == 0, group.output
    assert "6 faces found, the largest used" in " ".join(group.output.split())
    folders = _compare(world, world / "faces" / "person_0000", world / "faces" / "person_0001", "--json")
    pairs = json.loads(folders.output[folders.output.index("{") :])["pairs"]
    assert len(pairs) == 9 and len({(p["a"], p["b"]) for p in pairs}) == 9


def test_crops_of_the_input_size_are_embedded_as_they_are_and_match_the_library(world, tmp_path):
    out = tmp_path / "emb.npy"
    result = runner.invoke(
        app, ["embed", str(world / "faces"), "-c", str(world / "model.safetensors"), "--out", str(out),
              "--plot", str(tmp_path / "map.png"), "--tensorboard", str(tmp_path / "tb"), *CPU]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table, vectors = pd.read_csv(out.with_suffix(".csv")), np.load(out)
    assert vectors.shape == (9, 16) and list(table["identity"]).count("person_0001") == 3
    files = [world / "faces" / p for p in table["path"].map(lambda p: p.split("faces/", 1)[1])]
    expected = embed_files(world / "model.safetensors", files, EmbedOptions(resolve_runtime("cpu"), workers=0)).vectors
    assert np.abs(vectors - expected).max() < 1e-5
    assert cv2.imread(str(tmp_path / "map.png")) is not None
    tensor, metadata, sprite = _open_in_tensorboard_projector(tmp_path / "tb")
    assert np.abs(tensor.reshape(9, 16) - vectors).max() < 1e-5
    assert metadata.splitlines()[0] == "identity\tpath" and len(metadata.splitlines()) == 10
    assert sprite.shape[:2] == (96, 96)  # 9 thumbnails of 32 px, 3 x 3


def _open_in_tensorboard_projector(logdir):
    """What TensorBoard's projector plugin serves from `logdir`: the tensor, the metadata and the sprite."""
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.projector.projector_plugin import ProjectorPlugin
    from werkzeug.test import Client

    events = plugin_event_multiplexer.EventMultiplexer()
    events.AddRunsFromDirectory(str(logdir))
    events.Reload()
    context = base_plugin.TBContext(logdir=str(logdir), data_provider=data_provider.MultiplexerDataProvider(events, ""))
    routes = ProjectorPlugin(context).get_plugin_apps()

    def get(route, **query):
        response = Client(routes[route]).get("/", query_string=query)
        assert response.status_code == 200, response.data
        return response.data

    (run,) = json.loads(get("/runs"))
    (embedding,) = json.loads(get("/info", run=run))["embeddings"]
    name = embedding["tensorName"]
    tensor = np.frombuffer(get("/tensor", run=run, name=name), np.float32)
    sprite = cv2.imdecode(np.frombuffer(get("/sprite_image", run=run, name=name), np.uint8), cv2.IMREAD_COLOR)
    return tensor, get("/metadata", run=run, name=name).decode(), sprite


def test_parquet_output_holds_the_same_rows_as_npy(world, tmp_path):
    model = str(world / "model.safetensors")
    for out in (tmp_path / "emb.parquet", tmp_path / "emb.npy"):
        result = runner.invoke(app, ["embed", str(world / "faces"), "-c", model, "--out", str(out), *CPU])
        assert result.exit_code == 0, result.output
    table = pd.read_parquet(tmp_path / "emb.parquet")
    assert list(table.columns) == ["path", "identity", "embedding"]
    assert list(table["path"]) == list(pd.read_csv(tmp_path / "emb.csv")["path"])
    assert np.abs(np.stack(table["embedding"]) - np.load(tmp_path / "emb.npy")).max() < 1e-6


def test_a_list_of_raw_photos_is_aligned_and_embedded(world, reference, tmp_path):
    listed = tmp_path / "list.txt"
    listed.write_text(
        f"kate;{reference / 'faces' / 'photo_kate_siegel.jpg'}\nparty;{reference / 'faces' / 'multiface.jpg'}\n"
    )
    out = tmp_path / "photos.npy"
    result = runner.invoke(app, ["embed", str(listed), "-c", str(world / "model.safetensors"), "--out", str(out), *CPU])
    assert result.exit_code == 0, result.output
    assert np.load(out).shape == (2, 16) and list(pd.read_csv(tmp_path / "photos.csv")["identity"]) == ["kate", "party"]


@pytest.mark.parametrize(
    ("case", "expect"),
    [
        ("missing image", "no such image or folder"),
        ("empty folder", "no images in this folder"),
        ("no face", "no face found (MTCNN, faces of 20+ px); if it is already a face crop, use --align never"),
        ("not a model", "not a readable .safetensors"),
    ],
)
def test_bad_input_is_one_line_naming_the_file_and_writes_nothing(world, tmp_path, case, expect):
    a, model = world / "faces" / "person_0000" / "person_0000_0001.jpg", world / "model.safetensors"
    extra = []
    if case == "missing image":
        b = tmp_path / "gone.jpg"
    elif case == "empty folder":
        b = tmp_path / "empty"
        b.mkdir()
    elif case == "no face":
        b = tmp_path / "wall.png"
        cv2.imwrite(str(b), np.full((200, 300, 3), 90, np.uint8))
        extra = ["--align", "always"]
    else:
        b, model = a, tmp_path / "model.safetensors"
        model.write_text("not a model")
    result = runner.invoke(
        app,
        ["compare", str(a), str(b), "-c", str(model), "--show", str(tmp_path / "out.png"), *extra, "--device", "cpu"],
    )
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and expect in " ".join(result.output.split()) and "Traceback" not in result.output
    assert not (tmp_path / "out.png").exists()


def test_loader_options_are_refused_by_compare(world):
    result = _compare(world, world / "faces", world / "faces", "--workers", "2", "--cache", "c")
    assert result.exit_code == 2 and "--workers, --cache: compare embeds each photo once" in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"facecli {__version__}"


def test_eval_aligns_raw_photos_once_and_names_those_without_a_face(world, reference, tmp_path, monkeypatch):
    monkeypatch.setenv("FACECLI_CACHE", str(tmp_path / "cache"))
    faces = reference / "faces"
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(
        "photo_kate_siegel.jpg aligned_kate_siegel.png 1\nmultiface.jpg aligned_paul_rudd.png 0\n"
        "aligned_paul_rudd.png aligned_shea_whigham.png 0\nphoto_kate_siegel.jpg aligned_angelina_jolie.png 1\n"
    )
    args = ["eval", "-c", str(world / "model.safetensors"), "--pairs", str(pairs), "--root", str(faces),
            "--align", "always", "--folds", "2", "--report", str(tmp_path / "r.json"), *CPU]  # fmt: skip
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    crops = sorted((tmp_path / "cache" / "crops").glob("*.png"))
    assert len(crops) == 6  # one per distinct photo
    written = [c.stat().st_mtime_ns for c in crops]
    again = runner.invoke(app, [*args, "--force"])
    assert again.exit_code == 0 and [c.stat().st_mtime_ns for c in crops] == written  # reused
    wall = faces.parent / "wall.png"  # no face in it
    blank = tmp_path / "blank"
    blank.mkdir()
    cv2.imwrite(str(blank / "wall.png"), np.full((200, 300, 3), 90, np.uint8))
    (tmp_path / "bad.txt").write_text("wall.png wall.png 1\nwall.png wall.png 0\n")
    bad = runner.invoke(app, ["eval", "-c", str(world / "model.safetensors"), "--pairs", str(tmp_path / "bad.txt"),
                              "--root", str(blank), "--align", "auto", "--folds", "2", *CPU])  # fmt: skip
    assert bad.exit_code == 2 and "no face found" in bad.output and str(blank / "wall.png") in bad.output
    assert not wall.exists()


def test_tsne_map_and_an_unknown_projection(world, tmp_path):
    model, faces = str(world / "model.safetensors"), str(world / "faces")
    tsne = runner.invoke(
        app, ["embed", faces, "-c", model, "--out", str(tmp_path / "a.npy"), "--plot", str(tmp_path / "tsne.png"),
              "--projection", "tsne", *CPU]
    )  # fmt: skip
    assert tsne.exit_code == 0, tsne.output
    assert cv2.imread(str(tmp_path / "tsne.png")) is not None
    wrong = runner.invoke(
        app, ["embed", faces, "-c", model, "--out", str(tmp_path / "b.npy"), "--plot", str(tmp_path / "x.png"),
              "--projection", "umap", *CPU]
    )  # fmt: skip
    assert wrong.exit_code == 2 and "unknown projection 'umap'" in wrong.output
    assert not (tmp_path / "b.npy").exists()


def test_embed_keeps_an_existing_projector_without_force_and_writes_npy_and_csv_as_a_pair(world, tmp_path):
    board = tmp_path / "board"
    board.mkdir()
    (board / "projector_config.pbtxt").write_text("someone's projector")
    args = ["embed", str(world / "faces"), "-c", str(world / "model.safetensors"), "--out", str(tmp_path / "e.npy"),
            "--tensorboard", str(board), "--device", "cpu", "--workers", "0"]  # fmt: skip
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "already holds files" in refused.output
    assert (board / "projector_config.pbtxt").read_text() == "someone's projector"
    assert not (tmp_path / "e.npy").exists()
    written = runner.invoke(app, args[:6] + ["--device", "cpu", "--workers", "0"])
    assert written.exit_code == 0, written.output
    rows = pd.read_csv(tmp_path / "e.csv")
    assert len(np.load(tmp_path / "e.npy")) == len(rows) and sorted(p.name for p in tmp_path.iterdir()) == [
        "board", "e.csv", "e.npy"]  # fmt: skip
