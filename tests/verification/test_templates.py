"""IJB-style template verification: files in IJB's own layout, pooling as the IJB scripts pool, bad input."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from facecli.checkpoint import save_model
from facecli.cli import app
from facecli.embed import EmbedOptions, embed_files
from facecli.models import create_model
from facecli.runtime import resolve_runtime

runner = CliRunner()


@pytest.fixture(scope="module")
def ijb(tmp_path_factory, synth_dataset):
    """Each of the 6 identities as 2 templates of 3 images; the first template's images in 2 media."""
    tmp = tmp_path_factory.mktemp("ijb")
    save_model(create_model("mobilenet", input_size=32, embedding_size=16).eval(), tmp / "model.safetensors")
    lines, template, media = [], 0, 1000
    for identity in sorted(p for p in synth_dataset.iterdir() if p.is_dir()):
        images = sorted(identity.iterdir())
        for half in (images[:3], images[3:6]):
            template += 1
            for n, image in enumerate(half):
                media += n < 2 or template % 2 == 0  # a template's first two images share a media when odd
                lines.append(f"{image.relative_to(synth_dataset)} {template} {media}")
    (tmp / "face_tid_mid.txt").write_text("\n".join(lines) + "\n")
    pairs = [f"{a} {b} {int((a - 1) // 2 == (b - 1) // 2)}" for a, b in itertools.combinations(range(1, 13), 2)]
    (tmp / "template_pair_label.txt").write_text("\n".join(pairs) + "\n")
    return tmp


def _eval(ijb, synth_dataset, *extra, templates="face_tid_mid.txt", pairs="template_pair_label.txt"):
    return runner.invoke(
        app, ["eval", "-c", str(ijb / "model.safetensors"), "--templates", str(ijb / templates), "--template-pairs",
              str(ijb / pairs), "--root", str(synth_dataset), "--device", "cpu", "--workers", "0", "--folds", "2",
              *extra]
    )  # fmt: skip


def test_template_pairs_are_scored_from_media_then_template_means(ijb, synth_dataset, tmp_path):
    result = _eval(ijb, synth_dataset, "--scores", str(tmp_path / "s.csv"), "--report", str(tmp_path / "r.json"))
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "s.csv")
    assert len(table) == 66 and table["label"].sum() == 6
    meta = pd.read_csv(ijb / "face_tid_mid.txt", sep=" ", header=None, names=["image", "template", "media"])
    files = [synth_dataset / name for name in meta["image"]]
    features = embed_files(ijb / "model.safetensors", files, EmbedOptions(resolve_runtime("cpu"), workers=0)).vectors
    features = features / np.linalg.norm(features, axis=1, keepdims=True)
    pooled = {}
    for template, rows in meta.groupby("template"):  # the IJB scripts' loop, written out
        media = [features[group.index].mean(0) for _, group in rows.groupby("media")]
        summed = np.sum(media, 0)
        pooled[template] = summed / np.linalg.norm(summed)
    expected = [pooled[a] @ pooled[b] for a, b in zip(table["template1"], table["template2"], strict=True)]
    np.testing.assert_allclose(table["score"], expected, atol=1e-5)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["pairs"] == 66 and report["images"] == 36
    again = runner.invoke(app, ["eval", "--from-scores", str(tmp_path / "s.csv"), "--folds", "2"])
    assert again.exit_code == 0 and f"{report['auc']:.4f}" in again.output  # the scores file reads back


@pytest.mark.parametrize(
    ("case", "expect"),
    [
        ("missing image", "t.txt line 4: "),
        ("unknown template", "p.txt line 3: template 99 is not in"),
        ("bad label", "p.txt line 2: label 7 is not 0 or 1"),
        ("not a number", "t.txt line 1: template id 'x' is not a whole number"),
        ("alone", "--templates and --template-pairs go together"),
        ("euclidean", "--metric: template pairs are IJB's own files, scored by cosine"),
    ],
)
def test_bad_template_input_is_one_line(ijb, synth_dataset, tmp_path, case, expect):
    templates = (ijb / "face_tid_mid.txt").read_text().splitlines()
    pairs = (ijb / "template_pair_label.txt").read_text().splitlines()
    extra = []
    if case == "missing image":
        templates[3] = "gone.jpg 2 1002"
    elif case == "unknown template":
        pairs[2] = "1 99 0"
    elif case == "bad label":
        pairs[1] = "1 3 7"
    elif case == "not a number":
        templates[0] = templates[0].split()[0] + " x 1"
    elif case == "euclidean":
        extra = ["--metric", "euclidean"]
    (tmp_path / "t.txt").write_text("\n".join(templates) + "\n")
    (tmp_path / "p.txt").write_text("\n".join(pairs) + "\n")
    if case == "alone":
        model = str(ijb / "model.safetensors")
        result = runner.invoke(app, ["eval", "-c", model, "--templates", str(tmp_path / "t.txt")])
    else:
        (tmp_path / "model.safetensors").symlink_to(ijb / "model.safetensors")
        result = _eval(tmp_path, synth_dataset, *extra, templates="t.txt", pairs="p.txt")
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert expect in said and "Traceback" not in result.output
    assert case != "missing image" or "gone.jpg: no such image" in said
