"""Property tests: whatever bytes a pairs, annotation, scores or config file holds, its parser either
returns a result or raises FaceCliError (a one-line user error), never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facecli.data.pairs import read_pairs, resolve_images
from facecli.data.training_set import read_training_set
from facecli.errors import FaceCliError
from facecli.training.options import read_yaml_options
from facecli.verification.scores_file import read_scores

# Pieces real files are made of, so that examples reach deep into the parsers, mixed with anything at all.
TOKENS = st.sampled_from(
    [
        "10",
        "300",
        "0",
        "1",
        "2",
        "-1",
        "1e9",
        "nan",
        "Abel_Pacheco",
        "a/b.jpg",
        "../x.jpg",
        "/abs.jpg",
        "p\u00e9.png",
        "img1",
        "img2",
        "label",
        "fold",
        "distance",
        "score",
        "left",
        "right",
        "\t",
        " ",
        ",",
        ";",
        ":",
        '"',
        "\n",
        "\r\n",
        "\ufeff",
        "\x00",
        "- ",
        "{",
        "}",
        "[",
        "]",
        "epochs: ",
        "lr: ",
    ]  # fmt: skip
)
TEXT = st.one_of(st.lists(TOKENS, max_size=40).map("".join), st.text(max_size=200))
CONTENT = st.one_of(TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=200))
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parse(suffix: str, content: bytes, parse) -> None:  # noqa: ANN001
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"input{suffix}"
        path.write_bytes(content)
        try:
            parse(path, Path(tmp))
        except FaceCliError as exc:
            assert str(exc).strip()


@SETTINGS
@given(content=CONTENT, fmt=st.sampled_from(["auto", "lfw", "paths", "csv"]), suffix=st.sampled_from([".txt", ".csv"]))
def test_pairs_parser_returns_pairs_or_a_user_error(content, fmt, suffix):
    def parse(path: Path, root: Path) -> None:
        pairs = read_pairs(path, fmt)
        assert len(pairs.left) == len(pairs.right)
        if pairs.labels is not None:
            assert set(pairs.labels.tolist()) <= {0, 1}
        resolve_images(pairs, root)

    _parse(suffix, content, parse)


@SETTINGS
@given(content=CONTENT)
def test_annotation_parser_returns_a_training_set_or_a_user_error(content):
    def parse(path: Path, root: Path) -> None:
        data = read_training_set(path, root)
        assert len(data.paths) == len(data.labels) and data.num_classes >= 2

    _parse(".txt", content, parse)


@SETTINGS
@given(content=CONTENT)
def test_scores_parser_returns_scores_or_a_user_error(content):
    def parse(path: Path, _: Path) -> None:
        data = read_scores(path)
        assert len(data.scores) == len(data.labels) and data.metric in ("cosine", "euclidean")
        assert data.folds is None or (len(data.folds) == len(data.scores) and data.folds.dtype.kind == "i")

    _parse(".csv", content, parse)


@SETTINGS
@given(content=CONTENT)
def test_training_config_parser_returns_options_or_a_user_error(content):
    _parse(".yaml", content, lambda path, _: read_yaml_options(path))


# Typed columns: a well-formed CSV whose typed cells (label, fold, score) may hold anything.
CELL = st.one_of(
    st.sampled_from(["0", "1", "2", " 3 ", "1.5", "1e3", "", "x", "nan", "inf", "-1", "٣"]), st.text(max_size=5)
)


def _csv(header: str, rows: list[list[str]]) -> bytes:
    escape = lambda cell: '"' + cell.replace('"', '""') + '"'  # noqa: E731  (any text in one CSV cell)
    return "\n".join([header, *(",".join(map(escape, row)) for row in rows)]).encode("utf-8", "surrogatepass")


def _typed(path: Path, parse, rows: int) -> None:  # noqa: ANN001
    """Parsed with integer folds, or a FaceCliError naming a line of the file."""
    try:
        folds = parse(path)
    except FaceCliError as exc:
        lines = {f"line {n}" for n in range(1, rows + 2)}
        assert any(f"{line}:" in str(exc) for line in lines) or "not a readable CSV" in str(exc), str(exc)
        return
    assert folds is None or folds.dtype.kind == "i"


@SETTINGS
@given(rows=st.lists(st.tuples(CELL, CELL), min_size=1, max_size=8))
def test_pairs_csv_typed_columns_parse_or_name_the_line(rows):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pairs.csv"
        path.write_bytes(_csv("image1,image2,label,fold", [["a.jpg", "b.jpg", label, fold] for label, fold in rows]))
        _typed(path, lambda p: read_pairs(p, "csv").folds, len(rows))


@SETTINGS
@given(rows=st.lists(st.tuples(CELL, CELL, CELL), min_size=1, max_size=8), kind=st.sampled_from(["score", "distance"]))
def test_scores_typed_columns_parse_or_name_the_line(rows, kind):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scores.csv"
        path.write_bytes(_csv(f"{kind},label,fold", [list(row) for row in rows]))
        _typed(path, lambda p: read_scores(p).folds, len(rows))
