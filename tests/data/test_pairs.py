import numpy as np
import pytest

from facecli.data.pairs import missing_images, read_pairs, resolve_images
from facecli.errors import FaceCliError


def test_real_lfw_protocol_file(reference):
    pairs = read_pairs(reference / "lfw" / "lfw_pair.txt")
    assert (pairs.format, len(pairs), len(pairs.images)) == ("lfw", 6000, 7701)
    assert np.bincount(pairs.folds).tolist() == [600] * 10
    assert pairs.labels[:300].all() and not pairs.labels[300:600].any()
    assert pairs.left[0] == "Abel_Pacheco/Abel_Pacheco_0001.jpg"
    assert pairs.right[0] == "Abel_Pacheco/Abel_Pacheco_0004.jpg"


def test_reference_heads_of_the_other_formats(reference):
    csv = read_pairs(reference / "formats" / "LfwPairs_head.csv")
    assert csv.format == "csv" and csv.labels.tolist() == [1] * 5 and csv.left[0] == "Abel_Pacheco_0001.jpg"
    lines = read_pairs(reference / "formats" / "lfw_test_pair_head.txt")
    assert lines.format == "paths" and lines.right[0] == "Abel_Pacheco/Abel_Pacheco_0004.jpg"


def test_data_templates_parse():
    from pathlib import Path

    templates = Path(__file__).resolve().parents[2] / "data_templates"
    assert read_pairs(templates / "lfw_pairs.txt").folds.tolist() == [0] * 4 + [1] * 4
    assert read_pairs(templates / "pairs_paths.txt").labels.tolist() == [1, 1, 0, 0]
    assert read_pairs(templates / "pairs_labels.csv").labels.tolist() == [1, 0]
    assert read_pairs(templates / "pairs_ids.csv").labels.tolist() == [1, 0]


def test_single_count_header_variant(tmp_path):
    path = tmp_path / "pairsDevTest.txt"
    path.write_text("1\nA 1 2\nA 1 B 3\n")
    pairs = read_pairs(path)
    assert pairs.folds is None and pairs.labels.tolist() == [1, 0] and pairs.right[1] == "B/B_0003.jpg"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 1\nA 1 2 3 4 5\nA 1 B 2\n", "line 2: expected 3 fields"),
        ("1 1\nA 1 2\nA x B 2\n", "line 3: image number 'x'"),
        ("2 1\nA 1 2\nA 1 B 2\n", "promises 2 x 2 x 1 = 4 pairs, found 2"),
        ("1 1\nA 1 B 2\nA 1 2\n", "line 2: expected a genuine"),
    ],
)
def test_malformed_lfw_lines_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "p.txt"
    path.write_text(text)
    with pytest.raises(FaceCliError, match=message) as info:
        read_pairs(path)
    assert "p.txt" in str(info.value)


def test_paths_format_label_and_field_checks(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("a.jpg b.jpg 1\r\nc.jpg d.jpg 2\r\n")
    with pytest.raises(FaceCliError, match="line 2: label must be 0 or 1, got '2'"):
        read_pairs(path)
    path.write_text("a.jpg b.jpg 1\nc.jpg d.jpg\n")
    with pytest.raises(FaceCliError, match="line 2: expected 3 fields"):
        read_pairs(path)


def test_csv_with_bom_columns_option_and_missing_columns(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes("\ufeffq,r,same\nx.jpg,y.jpg,1\n".encode())
    with pytest.raises(FaceCliError, match="line 1: no image columns"):
        read_pairs(path)
    pairs = read_pairs(path, columns=["q", "r", "same"])
    assert pairs.labels.tolist() == [1]
    with pytest.raises(FaceCliError, match="--columns a,b not all"):
        read_pairs(path, columns=["a", "b"])


def test_unlabelled_csv_serves_predict(tmp_path):
    path = tmp_path / "test.csv"
    path.write_text("imageA,imageB\nx.jpg,y.jpg\n")
    assert read_pairs(path).labels is None


def test_paths_escaping_root_are_refused(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("../secret.jpg b.jpg 1\n")
    pairs = read_pairs(path)
    with pytest.raises(FaceCliError, match="outside --root"):
        resolve_images(pairs, tmp_path / "root")
    resolved = resolve_images(pairs, tmp_path / "root", allow_outside_root=True)
    assert sorted(missing_images(resolved)) == ["../secret.jpg", "b.jpg"]
