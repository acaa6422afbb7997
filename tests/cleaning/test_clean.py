"""`facecli clean`: dominant centres robust to wrong labels, suspects and same-person pairs on embeddings with
known errors, and the command's files and refusals."""

import importlib

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from facecli.checkpoint import save_model
from facecli.cleaning import clean
from facecli.cleaning.centres import embedding_centres, head_centres, unit
from facecli.cleaning.suspects import find_suspects
from facecli.cli import app
from facecli.embed import EmbedOptions
from facecli.models import create_model
from facecli.runtime import resolve_runtime

runner = CliRunner()


def _clusters(identities=20, per=12, dim=32, spread=0.35, seed=0):
    """Embeddings around one random direction per identity, and their true labels."""
    rng = np.random.default_rng(seed)
    directions = unit(rng.normal(size=(identities, dim)))
    labels = np.repeat(np.arange(identities), per)
    return unit(directions[labels] + spread * rng.normal(size=(len(labels), dim)) / np.sqrt(dim)), labels


def _corrupt(labels, share, identities, seed=1):
    """Labels with `share` of them moved to another identity; and which were moved."""
    rng = np.random.default_rng(seed)
    wrong = rng.random(len(labels)) < share
    noisy = labels.copy()
    noisy[wrong] = (labels[wrong] + rng.integers(1, identities, wrong.sum())) % identities
    return noisy, wrong


@pytest.mark.parametrize("share", [0.1, 0.3])
def test_suspects_find_the_wrong_labels_with_centres_from_the_embeddings(share):
    x, labels = _clusters()
    noisy, wrong = _corrupt(labels, share, 20)
    found = find_suspects(x, noisy, embedding_centres(x, noisy, 20))
    precision = (found.suspect & wrong).sum() / found.suspect.sum()
    recall = (found.suspect & wrong).sum() / wrong.sum()
    assert precision >= 0.95 and recall >= 0.95, (precision, recall)
    assert (found.nearest_other[wrong & found.suspect] == labels[wrong & found.suspect]).all()  # the true identity


def test_an_image_is_a_suspect_only_when_it_is_more_than_the_margin_nearer_another_centre():
    centres = np.eye(2, 3)  # two identities 90 degrees apart

    def at(degrees):  # an image of identity 0, `degrees` from its centre toward identity 1's
        return [np.cos(np.radians(degrees)), np.sin(np.radians(degrees)), 0.0]

    x, labels = np.array([at(10), at(50), at(70)]), np.zeros(3, int)  # margins -70, 10 and 50 degrees
    assert find_suspects(x, labels, centres).suspect.tolist() == [False, False, True]  # MIN_MARGIN, 15
    assert find_suspects(x, labels, centres, min_margin=0).suspect.tolist() == [False, True, True]
    assert find_suspects(x, labels, centres, max_angle=45, min_margin=60).suspect.tolist() == [False, True, True]


def test_the_dominant_sub_centre_is_the_one_most_images_are_nearest():
    x, labels = _clusters(identities=3, per=10)
    rng = np.random.default_rng(2)
    true = embedding_centres(x, labels, 3)
    weight = unit(rng.normal(size=(9, x.shape[1])))  # K = 3 sub-centres per class, rows c*3 + k
    dominant = [2, 0, 1]
    for c, k in enumerate(dominant):
        weight[c * 3 + k] = true[c]
    centres = head_centres(weight, x, labels, 3)
    assert np.allclose(centres, true)


def test_one_person_under_two_names_is_found():
    x, labels = _clusters(identities=10, per=12)
    split = labels.copy()
    split[(labels == 4) & (np.arange(len(labels)) % 2 == 0)] = 10  # half of identity 4 named 10
    found = find_suspects(x, split, embedding_centres(x, split, 11))
    assert [(a, b) for a, b, _ in found.same_person] == [(4, 10)]


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """A small synthetic set, its training list and an untrained model file."""
    from facecli.data.annotation import annotate
    from facecli.data.synth import synth

    tmp = tmp_path_factory.mktemp("clean")
    synth(tmp / "faces", identities=6, images=4, size=32, seed=2)
    annotate(tmp / "faces", out_dir=tmp / "lists")
    torch.manual_seed(0)
    save_model(create_model("mobilenet", input_size=32, embedding_size=16), tmp / "model.safetensors")
    return tmp


def _clean(faces, out, *extra):
    return runner.invoke(
        app, ["clean", "--data", str(faces / "lists" / "cls_train.txt"), "-c", str(faces / "model.safetensors"),
              "--out", str(out), "--backend", "torch", "--workers", "0", *extra]
    )  # fmt: skip


def test_clean_writes_the_suspects_the_pairs_and_a_cleaned_list_and_refuses_to_overwrite(faces, tmp_path):
    result = _clean(faces, tmp_path / "out", "--show")
    assert result.exit_code == 0, result.output
    suspects = pd.read_csv(tmp_path / "out" / "suspects.csv")
    assert list(suspects.columns) == ["path", "identity", "angle", "nearest_other", "other_angle"]
    kept = (tmp_path / "out" / "cls_train.txt").read_text().splitlines()
    assert len(kept) + len(suspects) == 24 and not set(suspects["path"]) & {line.split(";")[1] for line in kept}
    assert (tmp_path / "out" / "same_person.csv").is_file() and (tmp_path / "out" / "suspects.png").stat().st_size
    assert "clean report" in result.output
    before = (tmp_path / "out" / "cls_train.txt").read_bytes()
    again = _clean(faces, tmp_path / "out")
    assert again.exit_code == 2 and "--force" in again.output
    assert (tmp_path / "out" / "cls_train.txt").read_bytes() == before


def test_a_model_file_without_data_is_one_line_before_any_work(faces, tmp_path):
    result = runner.invoke(app, ["clean", "-c", str(faces / "model.safetensors"), "--out", str(tmp_path / "o")])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "holds no class centres and no training list; give --data" in said
    assert said.count("error:") == 1 and not (tmp_path / "o").exists()


def test_the_cleaned_list_cannot_replace_the_training_list(faces):
    result = _clean(faces, faces / "lists", "--force")
    assert result.exit_code == 2 and "cls_train.txt" in result.output
    assert len((faces / "lists" / "cls_train.txt").read_text().splitlines()) == 24


def test_a_model_that_cannot_tell_the_identities_apart_is_refused(faces, tmp_path, monkeypatch):
    module = importlib.import_module("facecli.cleaning.clean")  # the package's `clean` is the function
    monkeypatch.setattr(module, "MOST_SUSPECT", 0.0)  # an untrained model's share of suspects, whatever it is
    result = _clean(faces, tmp_path / "out", "--min-margin", "0")
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "does not tell these identities apart" in said
    assert not (tmp_path / "out" / "cls_train.txt").exists()


def _run_folder(faces, run, names):
    """A run folder as train writes it, trained on identities `names`, with a margin head of 2 sub-centres."""
    run.mkdir()
    (run / "last.safetensors").write_bytes((faces / "model.safetensors").read_bytes())
    (run / "classes.txt").write_text("".join(f"{n};{name}\n" for n, name in enumerate(names)))
    weight = torch.randn(2 * len(names), 16, generator=torch.Generator().manual_seed(0))
    torch.save({"model": {}, "optimizer": {}, "loss": {"head.weight": weight}}, run / "last_state.pt")


def test_a_run_that_held_identities_back_judges_them_by_their_embeddings(faces, tmp_path, monkeypatch):
    module = importlib.import_module("facecli.cleaning.clean")
    monkeypatch.setattr(module, "MOST_SUSPECT", 1.0)  # untrained: judge whatever it finds
    names = [line.split(";")[0] for line in (faces / "lists" / "cls_train.txt").read_text().splitlines()]
    trained = sorted(set(names), key=int)[:4]  # 2 of the 6 held back, as a run's validation does
    _run_folder(faces, tmp_path / "run", trained)
    embedding = EmbedOptions(resolve_runtime("cpu"), backend="torch", workers=0)
    report = clean(faces / "lists" / "cls_train.txt", tmp_path / "run", tmp_path / "out", embedding)
    held = "the run's head (2 centre(s) per identity: the dominant one); the 2 it held back: their embeddings"
    assert report.centres == held
    _run_folder(faces, tmp_path / "other", [*trained, "999"])
    listed = str(faces / "lists" / "cls_train.txt")
    other = runner.invoke(app, ["clean", "-c", str(tmp_path / "other"), "--data", listed, "--out", str(tmp_path / "o")])
    assert other.exit_code == 2 and "trained on 1 identities that" in other.output and "999" in other.output
