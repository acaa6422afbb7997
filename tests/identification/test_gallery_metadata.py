"""A gallery file whose metadata is well-formed but lies is named in one line on open: property-based over
every metadata field and value kind, then an empty gallery and one of another dimension."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facecli.errors import FaceCliError
from facecli.identification.gallery import META_CHOICES, META_NUMBERS, Gallery

GOOD = {"checkpoint": "m.safetensors", "model_hash": "abc", "template": "image", "index_type": "flat",
        "nlist": 0, "nprobe": 32, "flip": False}  # fmt: skip
ANY = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=6),
                st.sampled_from(["image", "mean", "flat", "ivf"]), st.lists(st.integers(), max_size=2))  # fmt: skip


def _write(path, meta, embeddings=None):
    embeddings = np.ones((3, 8), np.float32) if embeddings is None else embeddings
    rows = len(embeddings)
    np.savez(path, embeddings=embeddings, identities=np.array(["a"] * rows), paths=np.array(["p"] * rows),
             meta=np.array(json.dumps(meta)), faiss=np.zeros(0, np.uint8))  # fmt: skip


def _valid(field, value) -> bool:
    if field in META_NUMBERS:
        bound = META_NUMBERS[field]
        whole = not isinstance(value, bool) and isinstance(value, int | float) and float(value).is_integer()
        return whole and bound.low <= value <= bound.high  # 32.0 from a JSON writer is the count 32
    if field in META_CHOICES:
        return value in META_CHOICES[field]
    if field == "flip":
        return isinstance(value, bool)
    return isinstance(value, str)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(sorted(GOOD)), value=ANY)
def test_every_metadata_field_is_checked_on_open(tmp_path, field, value):
    path = tmp_path / "g.npz"
    _write(path, GOOD | {field: value})
    if _valid(field, value):
        Gallery.open(path)
    else:
        with pytest.raises(FaceCliError, match="g.npz: (gallery metadata|damaged)"):
            Gallery.open(path)


@pytest.mark.parametrize(
    ("embeddings", "expect"),
    [(np.full((3, 8), np.nan, np.float32), "NaN or inf"), (np.ones((3, 8), np.int64), "embeddings of int64"),
     (np.ones((3, 1), np.float32), "x 1 dimensions")],
)  # fmt: skip
def test_damaged_embeddings_are_refused_on_open(tmp_path, embeddings, expect):
    _write(tmp_path / "g.npz", GOOD, embeddings)
    with pytest.raises(FaceCliError, match=expect):
        Gallery.open(tmp_path / "g.npz")


def test_unknown_metadata_is_not_facecli_s(tmp_path):
    _write(tmp_path / "g.npz", GOOD | {"run": "rm -rf"})
    with pytest.raises(FaceCliError, match="is not facecli's"):
        Gallery.open(tmp_path / "g.npz")
