"""One reader for the training lists users have: cls_train.txt, CSV (annotate's, or any columns), CelebA."""

from __future__ import annotations

import pytest

from facecli.data.annotation import annotate
from facecli.data.synth import synth
from facecli.data.training_set import read_training_set
from facecli.errors import FaceCliError
from facecli.training import TrainOptions, train


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lists")
    synth(tmp / "faces", identities=3, images=4, size=32, seed=8)
    annotate(tmp / "faces", out_dir=tmp, csv=tmp / "train.csv")
    return tmp


def test_the_csv_annotate_writes_trains_like_its_cls_train(faces, tmp_path):
    from_csv, from_txt = read_training_set(faces / "train.csv"), read_training_set(faces / "cls_train.txt")
    assert from_csv.paths == from_txt.paths and (from_csv.labels == from_txt.labels).all()
    assert from_csv.classes == ["person_0000", "person_0001", "person_0002"]  # the identity column names them
    result = train(TrainOptions(data=faces / "train.csv", run_dir=tmp_path / "run", epochs=1, workers=0, device="cpu"))
    assert result.stopped == "finished"


def test_any_columns_and_celeba_identity_files(faces, tmp_path):
    images = sorted((faces / "faces").rglob("*.jpg"))
    other = tmp_path / "webface.csv"
    other.write_text("img,cls\n" + "".join(f"{p},{n // 4}\n" for n, p in enumerate(images)))
    listed = read_training_set(other, columns=["img", "cls"])
    assert listed.num_classes == 3 and listed.paths == images
    celeba = tmp_path / "Anno" / "identity_CelebA.txt"
    celeba.parent.mkdir()
    celeba.write_text("".join(f"{p.relative_to(faces / 'faces')} {2880 + n // 4}\n" for n, p in enumerate(images)))
    with pytest.raises(
        FaceCliError, match=r"identity_CelebA.txt line 1: .*no such image; 12 listed image\(s\) missing \(pass --root"
    ):
        read_training_set(celeba)
    found = read_training_set(celeba, root=faces / "faces")
    assert found.classes == ["2880", "2881", "2882"] and len(found.paths) == 12


@pytest.mark.parametrize(
    ("name", "text", "expect"),
    [
        ("a.csv", "path,label\nx.jpg,\n", "a.csv line 2: empty label"),
        (
            "b.csv",
            "file,id\nx.jpg,1\n",
            "b.csv line 1: no column path, label (columns: file, id); name them with --columns",
        ),
        ("c.txt", "000001.jpg 28a0\n", "c.txt line 1: expected '<image> <identity number>'"),
        ("d.txt", "0;a.jpg\nzero;b.jpg\n", "d.txt line 2: class id 'zero' is not an integer"),
        ("e.txt", "just some words here\n", "e.txt line 1: not a training list facecli reads"),
    ],
)
def test_bad_lists_name_the_file_and_line(tmp_path, name, text, expect):
    (tmp_path / name).write_text(text)
    with pytest.raises(FaceCliError, match=expect.replace("(", r"\(").replace(")", r"\)")):
        read_training_set(tmp_path / name)
