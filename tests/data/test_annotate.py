import shutil

import cv2
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from facecli.data.annotation import annotate
from facecli.data.images import ImageError, decode
from facecli.data.synth import synth
from facecli.errors import FaceCliError


def _jpg(path, seed, size=24):
    rgb = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), rgb)


@pytest.fixture
def messy(tmp_path):
    """Identities with odd extensions, corrupt files, an empty folder, duplicates and a stray file."""
    root = tmp_path / "data"
    _jpg(root / "alice" / "a1.jpg", 1)
    _jpg(root / "alice" / "a2.JPG", 2)
    cv2.imwrite(str(root / "alice" / "a3.png"), np.full((20, 20), 7, np.uint16) * 1000)  # 16-bit grey
    Image.new("RGBA", (20, 20), (1, 2, 3, 128)).save(root / "alice" / "a4.webp")
    _jpg(root / "bob" / "b1.jpeg", 3)
    Image.new("L", (20, 20), 9).save(root / "bob" / "b2.pgm")
    Image.new("RGB", (20, 20), (5, 6, 7)).save(root / "bob" / "b3.bmp")
    shutil.copy(root / "alice" / "a1.jpg", root / "bob" / "b4.jpg")  # duplicate across identities
    (root / "bob" / "empty.jpg").write_bytes(b"")
    (root / "bob" / "text.jpg").write_text("not an image")
    good = (root / "alice" / "a1.jpg").read_bytes()
    (root / "bob" / "cut.jpg").write_bytes(good[: len(good) // 2])
    (root / "bob" / "notes.txt").write_text("ignored")
    _jpg(root / "carol" / "c1.jpg", 4)
    (root / "dave").mkdir()
    (root / "README").write_text("a stray file beside the identity folders")
    return root


def test_annotate_writes_facenet_format_and_reports_every_problem(messy, tmp_path):
    out = tmp_path / "out"
    report = annotate(messy, out_dir=out, csv=out / "train.csv", check=True)
    lines = (out / "cls_train.txt").read_text().splitlines()
    ids = {line.split(";")[1].split("/")[-1]: int(line.split(";")[0]) for line in lines}
    assert ids == {
        "a1.jpg": 0,
        "a2.JPG": 0,
        "a3.png": 0,
        "a4.webp": 0,
        "b1.jpeg": 1,
        "b2.pgm": 1,
        "b3.bmp": 1,
        "b4.jpg": 1,
        "c1.jpg": 2,
    }
    assert all(line.split(";")[1].startswith(str(messy.resolve())) for line in lines)
    assert (out / "classes.txt").read_text().splitlines() == ["0;alice", "1;bob", "2;carol", "3;dave"]
    bad = {p.name: why for p, why in report.scan.bad_images}
    assert set(bad) == {"empty.jpg", "text.jpg", "cut.jpg"}
    assert "empty" in bad["empty.jpg"] and "truncated" in bad["cut.jpg"]
    assert report.scan.empty_identities == ["dave"]
    assert sorted(report.few_images) == ["carol", "dave"]
    assert [sorted(p.name for p in g) for g in report.scan.duplicates] == [["a1.jpg", "b4.jpg"]]
    assert {p.name for p, _ in report.scan.skipped} == {"notes.txt", "README"}
    csv = pd.read_csv(out / "train.csv")
    assert list(csv.columns) == ["path", "label", "identity"] and len(csv) == 9


def test_without_check_truncated_jpeg_passes_header_probe_but_others_fail(messy, tmp_path):
    report = annotate(messy, out_dir=tmp_path / "o")
    assert {p.name for p, _ in report.scan.bad_images} == {"empty.jpg", "text.jpg"}


def test_converted_images_decode_to_uint8_rgb(messy):
    for name in ("alice/a3.png", "alice/a4.webp", "bob/b2.pgm"):
        image = decode((messy / name).read_bytes())
        assert image.dtype == np.uint8 and image.shape == (20, 20, 3)
    assert decode((messy / "alice/a3.png").read_bytes())[0, 0, 0] == (7000 >> 8)


def test_decompression_bomb_header_is_refused_before_decoding(tmp_path):
    header = Image.new("1", (20000, 20000))
    path = tmp_path / "bomb.png"
    header.save(path)
    with pytest.raises(ImageError, match="pixel limit"):
        decode(path.read_bytes())


def test_outputs_not_overwritten_without_force(messy, tmp_path):
    out = tmp_path / "out"
    annotate(messy, out_dir=out)
    (out / "cls_train.txt").write_text("keep me")
    with pytest.raises(FaceCliError, match="--force"):
        annotate(messy, out_dir=out)
    assert (out / "cls_train.txt").read_text() == "keep me"
    annotate(messy, out_dir=out, force=True)
    assert (out / "cls_train.txt").read_text() != "keep me"


def _parse_lfw(path):
    lines = path.read_text().splitlines()
    folds, per_half = map(int, lines[0].split("\t"))
    rows = [line.split("\t") for line in lines[1:]]
    return folds, per_half, rows


def test_pairs_with_holdout_are_lfw_format_and_disjoint_from_training(synth_dataset, tmp_path):
    out = tmp_path / "out"
    report = annotate(synth_dataset, out_dir=out, pairs=40, pairs_out=out / "pairs.txt", holdout=4, seed=3)
    folds, per_half, rows = _parse_lfw(out / "pairs.txt")
    assert (folds, per_half, len(rows), report.pairs_format) == (10, 2, 40, "lfw")
    for k in range(folds):
        block = rows[k * 2 * per_half : (k + 1) * 2 * per_half]
        assert [len(r) for r in block] == [3] * per_half + [4] * per_half
    named = {r[0] for r in rows} | {r[2] for r in rows if len(r) == 4}
    assert named <= set(report.holdout) and len(report.holdout) == 4
    trained = {line.split(";")[1].split("/")[-2] for line in (out / "cls_train.txt").read_text().splitlines()}
    assert not trained & set(report.holdout)
    for r in rows:
        images = [(r[0], r[1]), (r[0], r[2])] if len(r) == 3 else [(r[0], r[1]), (r[2], r[3])]
        for name, number in images:
            assert (synth_dataset / name / f"{name}_{int(number):04d}.jpg").is_file()
    keys = {tuple(r) for r in rows}
    assert len(keys) == len(rows)


def test_pairs_for_non_lfw_names_use_path_lines(messy, tmp_path):
    report = annotate(messy, out_dir=tmp_path, pairs=4, folds=2, pairs_out=tmp_path / "p.txt")
    assert report.pairs_format == "paths"
    for line in (tmp_path / "p.txt").read_text().splitlines():
        a, b, label = line.split(" ")
        assert (messy / a).is_file() and (messy / b).is_file() and label in ("0", "1")


def test_too_many_pairs_is_a_clear_error(synth_dataset, tmp_path):
    with pytest.raises(FaceCliError, match="cannot draw|make only"):
        annotate(synth_dataset, out_dir=tmp_path, pairs=2000, pairs_out=tmp_path / "p.txt")
    assert not (tmp_path / "p.txt").exists()


def test_far_more_pairs_than_the_images_make_is_refused_at_once_with_the_most_there_are(synth_dataset, tmp_path):
    with pytest.raises(FaceCliError, match=r"needs 50000000 distinct genuine pairs; these images make only \d+"):
        annotate(synth_dataset, out_dir=tmp_path, pairs=100_000_000, pairs_out=tmp_path / "p.txt")  # counted, not drawn


def test_not_a_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FaceCliError, match="not a directory"):
        annotate(tmp_path / "missing", out_dir=tmp_path)


def test_nested_identity_folders_are_named_by_their_path_and_mixed_depths_are_reported(tmp_path):
    from facecli.data.scan import scan_dataset

    def image(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), np.full((16, 16, 3), 100, np.uint8))

    for alphabet in ("Alphabet_of_the_Magi", "Greek"):
        for character in ("character01", "character02"):
            for n in (1, 2):
                image(tmp_path / "omniglot" / alphabet / character / f"{n:04d}_0{n}.png")
    scan = scan_dataset(tmp_path / "omniglot")
    assert scan.identities == [
        "Alphabet_of_the_Magi/character01", "Alphabet_of_the_Magi/character02", "Greek/character01",
        "Greek/character02",
    ]  # fmt: skip
    assert scan.image_count == 8
    image(tmp_path / "omniglot" / "Loose" / "0001_01.png")  # an identity at depth 1 beside ones at depth 2
    with pytest.raises(FaceCliError, match=r"different depths \(depth 1: 1 folder\(s\), e.g. Loose; depth 2: 4"):
        scan_dataset(tmp_path / "omniglot")


def test_symbolic_link_loops_in_a_dataset_end_and_are_named(tmp_path):
    from facecli.data.scan import scan_dataset

    synth(tmp_path / "flat", identities=3, images=2, size=32, seed=3)
    (tmp_path / "data" / "group").mkdir(parents=True)
    for person in (tmp_path / "flat").iterdir():
        person.rename(tmp_path / "data" / "group" / person.name)
    (tmp_path / "flat").rmdir()
    (tmp_path / "data" / "group" / "up").symlink_to("..")  # two loops: 2^depth paths once walked blindly
    (tmp_path / "data" / "group" / "up2").symlink_to("../..")
    scan = scan_dataset(tmp_path / "data")
    assert sorted(scan.images) == [f"group/person_{n:04d}" for n in range(3)]
    looped = [path.name for path, reason in scan.skipped if "symbolic link loop" in reason]
    assert sorted(looped) == ["data", "up"]  # up leads to data/ itself; up2 above it, back into data/


def test_names_with_spaces_and_semicolons_round_trip_through_annotate_train_and_eval(tmp_path):
    from facecli.data.pairs import read_pairs, resolve_images
    from facecli.data.training_set import read_training_set

    synth(tmp_path / "plain", identities=6, images=3, size=32, seed=5)
    faces = tmp_path / "faces"
    faces.mkdir()
    for n, person in enumerate(sorted((tmp_path / "plain").iterdir())):
        name = f"Jean Claude;{n}" if n % 2 else f"Anne Marie {n}"
        (faces / name).mkdir()
        for k, image in enumerate(sorted(person.iterdir())):
            image.rename(faces / name / f"{name}_{k + 1:04d}.jpg")
    annotate(faces, out_dir=tmp_path, pairs=12, folds=2, holdout=2, pairs_out=tmp_path / "pairs.txt")
    data = read_training_set(tmp_path / "cls_train.txt")
    assert len(data.paths) == 12 and all(p.is_file() for p in data.paths)  # paths holding ';' read whole
    pairs = read_pairs(tmp_path / "pairs.txt")  # a CSV: LFW lines split on the spaces
    assert len(pairs.labels) == 12 and set(pairs.labels) == {0, 1}
    assert all(p.is_file() for p in resolve_images(pairs, faces).values())
