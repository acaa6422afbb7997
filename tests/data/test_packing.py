"""`facecli pack` / `unpack`: folders to insightface .rec + .idx and back, pairs files to .bin; the .rec
written is byte for byte what the independent writer in test_recordio.py makes of the same images."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from facecli.cli import app
from facecli.data.annotation import annotate
from facecli.data.bin_sets import read_bin
from facecli.data.pairs import read_pairs, resolve_images
from facecli.data.recordio import open_record_set
from facecli.data.synth import synth
from tests.data.test_recordio import _frame, _pack

runner = CliRunner()


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pack")
    synth(tmp / "faces", identities=3, images=3, size=32, seed=9)
    annotate(tmp / "faces", out_dir=tmp, pairs=12, folds=2, pairs_out=tmp / "pairs.txt")
    return tmp


def test_a_folder_packs_into_the_rec_an_independent_writer_makes_and_unpacks_back(faces, tmp_path):
    rec = tmp_path / "train.rec"
    result = runner.invoke(app, ["pack", str(faces / "faces"), "--out", str(rec)])
    assert result.exit_code == 0, result.output
    files = [f for folder in sorted((faces / "faces").iterdir()) for f in sorted(folder.iterdir())]
    expected = _frame(_pack([10.0, 13.0]))  # header: images are keys 1..9, identities 10..12
    for key, path in enumerate(files, 1):
        expected += _frame(_pack([float((key - 1) // 3)], path.read_bytes(), key))
    for label in range(3):
        expected += _frame(_pack([float(1 + 3 * label), float(4 + 3 * label)]))
    assert rec.read_bytes() == expected[: len(rec.read_bytes())] and len(rec.read_bytes()) == len(expected)
    found = open_record_set(rec)
    assert found.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    back = runner.invoke(app, ["unpack", str(rec), "--out", str(tmp_path / "back")])
    assert back.exit_code == 0, back.output
    unpacked = sorted((tmp_path / "back").rglob("*.jpg"), key=lambda p: int(p.stem))
    assert [p.read_bytes() for p in unpacked] == [f.read_bytes() for f in files]
    assert [p.parent.name for p in unpacked] == ["0"] * 3 + ["1"] * 3 + ["2"] * 3


def test_a_pairs_file_packs_into_a_bin_that_eval_reads(faces, tmp_path):
    out = tmp_path / "my.bin"
    result = runner.invoke(app, ["pack", "--pairs", str(faces / "pairs.txt"), "--root", str(faces / "faces"),
                                 "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    data, pairs = read_bin(out), read_pairs(faces / "pairs.txt")
    files = resolve_images(pairs, faces / "faces")
    assert data.issame == [bool(x) for x in pairs.labels]
    assert data.images[0] == files[pairs.left[0]].read_bytes() and data.images[1] == files[pairs.right[0]].read_bytes()


def test_pack_takes_a_source_or_pairs_not_both(faces, tmp_path):
    both = runner.invoke(app, ["pack", str(faces / "faces"), "--pairs", str(faces / "pairs.txt"), "--out", "x.rec"])
    assert both.exit_code == 2 and "pack takes a SOURCE folder or list" in both.output
    wrong = runner.invoke(app, ["pack", str(faces / "faces"), "--out", str(tmp_path / "x.bin")])
    assert wrong.exit_code == 2 and "pack images into a .rec" in wrong.output
