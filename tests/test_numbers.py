"""One validator for every number a user or a file gives: property-based over the option space (any value,
any field), then the cases that were silent wrong answers before it existed."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facecli.errors import FaceCliError
from facecli.models.embedder import CONFIG_NUMBERS, ModelConfig, default_config
from facecli.numbers import Bound, check_number
from facecli.training.options import NUMBERS, TrainOptions

ANY_VALUE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**40), 2**40), st.booleans(), st.text(max_size=5),
    st.none(), st.lists(st.integers(), max_size=2),
)  # fmt: skip


def _acceptable(value: object, bound: Bound) -> bool:
    """The rule stated independently of check_number: a real finite number in range, whole for counts."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    whole = not bound.integer or float(value).is_integer()
    above = bound.low is None or (value > bound.low if bound.low_open else value >= bound.low)
    below = bound.high is None or (value < bound.high if bound.high_open else value <= bound.high)
    return whole and above and below


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(sorted(NUMBERS)), value=ANY_VALUE)
def test_every_training_number_is_accepted_exactly_when_real_finite_and_in_range(field, value):
    if value is None:
        return  # not given
    options = TrainOptions(data="d", run_dir="r", **{field: value})
    if _acceptable(value, NUMBERS[field]):
        try:
            options._check_numbers()
        except FaceCliError as exc:
            pytest.fail(f"{field}={value!r} refused: {exc}")
    else:
        with pytest.raises(FaceCliError) as refused:
            options._check_numbers()
        said = str(refused.value)
        assert "\n" not in said and f"--{field.replace('_', '-')} must be" in said and repr(value) in said


@settings(max_examples=200, deadline=None)
@given(field=st.sampled_from(["embedding_size", "num_classes", "threshold", "dropout"]), value=ANY_VALUE)
def test_a_model_files_numbers_are_checked_on_load(field, value):
    data = default_config("mobilenet", input_size=32).to_dict() | {field: value}
    if value is None or _acceptable(value, CONFIG_NUMBERS[field]):
        ModelConfig.from_dict(data)
    else:
        with pytest.raises(FaceCliError, match=f"checkpoint config: {field} must be"):
            ModelConfig.from_dict(data)


@pytest.mark.parametrize(
    ("field", "value"),
    [("input_size", [100000, 100000]), ("input_size", [32]), ("input_size", "32"), ("input_size", [-32, 32]),
     ("mean", [0.5, "x", 0.5]), ("std", [0.5, 0.0, 0.5]), ("std", [0.5, float("nan"), 0.5])],
)  # fmt: skip
def test_lying_sizes_and_normalisation_in_a_model_file_are_refused(field, value):
    data = default_config("mobilenet", input_size=32).to_dict() | {field: value}
    with pytest.raises(FaceCliError, match=f"checkpoint config: {field} must be"):
        ModelConfig.from_dict(data)


def test_a_model_file_whose_metadata_lies_is_named_in_one_line(tmp_path):
    from safetensors.torch import save_file

    from facecli.checkpoint import CONFIG_KEY, read_config
    from facecli.models import create_model

    model = create_model("mobilenet", input_size=32, embedding_size=8)
    config = dataclasses.replace(model.config, input_size=(100000, 100000))
    path = tmp_path / "big.safetensors"
    weights = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(path), metadata={CONFIG_KEY: json.dumps(config.to_dict())})
    with pytest.raises(FaceCliError, match=r"big.safetensors: checkpoint config: input_size must be an integer in"):
        read_config(path)


@pytest.mark.parametrize("size", [0, -1])
def test_embedding_size_zero_is_refused_not_replaced_by_the_backbones_own(size):
    with pytest.raises(FaceCliError, match="--embedding-size must be an integer in"):
        TrainOptions(data="d", run_dir="r", embedding_size=size).check()
    assert default_config("mobilenet", embedding_size=None).embedding_size == 128


def test_the_messages_say_what_is_expected():
    assert Bound(0, 1, low_open=True).describe() == "a number in (0, 1]"
    assert Bound(1, integer=True).describe() == "an integer >= 1"
    assert Bound(0, low_open=True).describe() == "a number > 0"
    assert Bound().describe() == "a finite number"
    with pytest.raises(FaceCliError, match=r"^model.json: --lr must be a number > 0, got nan$"):
        check_number("--lr", float("nan"), Bound(0, low_open=True), "model.json")


def test_a_threshold_must_be_a_score_the_metric_can_take():
    from facecli.numbers import check_threshold

    assert check_threshold(-1, "cosine") == -1 and check_threshold(1.5, "euclidean") == 1.5
    for value, metric in ((1.01, "cosine"), (-0.1, "euclidean"), (2.5, "euclidean"), (float("inf"), "cosine")):
        with pytest.raises(FaceCliError, match=rf"--threshold \(a {metric} score\) must be a number in"):
            check_threshold(value, metric)
