"""One source per default: every option the CLI passes to the library is None unless given, its help shows
the library's own default, and each renamed flag's old spelling still works with a one-line note."""

import dataclasses
import inspect

import pytest
import typer
from typer.testing import CliRunner

from facecli.align.folder import AlignOptions
from facecli.cli import app
from facecli.cli.defaults import library_constant
from facecli.data.annotation import annotate
from facecli.data.synth import synth
from facecli.embed import backends
from facecli.exporting import export
from facecli.identification import build_index, identify
from facecli.photos import embed_to_file
from facecli.training.options import TrainOptions
from facecli.verification import PairsInput, evaluate, sweep

runner = CliRunner()


def _keywords(target) -> dict[str, object]:
    if dataclasses.is_dataclass(target):
        return {f.name: f.default for f in dataclasses.fields(target)}
    return {name: p.default for name, p in inspect.signature(target).parameters.items()}


# command -> (library function or dataclass its options feed, {option's parameter name: library's name})
FEEDS = {
    "align": (AlignOptions, {}),
    "annotate": (annotate, {"out": "out_dir", "num_pairs": "pairs"}),
    "synth": (synth, {}),
    "export": (export, {}),
    "index": (build_index, {}),
    "identify": (identify, {}),
    "embed": (embed_to_file, {}),
    "eval": (evaluate, {}),
    "sweep": (sweep, {}),
    "train": (TrainOptions, {}),
}
PAIRS_OPTIONS = {"metric", "fmt"}  # the pairs group feeds PairsInput


def _options(name: str) -> list:
    return [p for p in typer.main.get_command(app).commands[name].params if p.param_type_name == "option"]


@pytest.mark.parametrize("name", sorted(FEEDS))
def test_options_fed_to_the_library_default_to_none_and_show_its_default(name):
    target, renamed = FEEDS[name]
    library = _keywords(target)
    pairs = _keywords(PairsInput)
    checked = 0
    for option in _options(name):
        if option.hidden or option.is_flag and not option.secondary_opts:
            continue  # an old spelling, or an on/off flag (off unless given)
        key = renamed.get(option.name, option.name)
        default = pairs[key] if key in PAIRS_OPTIONS - set(library) else library.get(key, inspect.Parameter.empty)
        if default is inspect.Parameter.empty:
            continue  # the CLI's own option
        assert option.default is None, f"{name} {option.opts[0]} has its own default {option.default!r}"
        if default not in (None, dataclasses.MISSING) and not (name == "train" and isinstance(default, bool)):
            assert f"default: {default}" in option.help, f"{name} {option.opts[0]}: {option.help}"
        checked += 1
    assert checked >= 1


def test_the_batch_rule_in_the_help_is_the_backends():
    assert library_constant("embed/backends", "CPU_TORCH_BATCH") == str(backends.CPU_TORCH_BATCH)
    help_text = next(o.help for o in _options("eval") if o.name == "batch_size")
    assert f"default: {backends.CPU_TORCH_BATCH} for PyTorch on a CPU, else {backends.DEFAULT_BATCH}" in help_text


@pytest.mark.parametrize(
    ("command", "old", "new"),
    [
        ("align", "--template", "--align-template"),
        ("align", "--margin", "--crop-margin"),
        ("align", "--workers", "--threads"),
        ("annotate", "--pairs", "--num-pairs"),
        ("annotate", "--workers", "--threads"),
        ("synth", "--workers", "--threads"),
    ],
)
def test_an_old_flag_is_hidden_and_names_the_new_one(command, old, new):
    options = {opt: o for o in _options(command) for opt in o.opts}
    assert options[old].hidden and not options[new].hidden


def test_an_old_flag_still_works_and_prints_a_note(tmp_path):
    old = runner.invoke(app, ["synth", str(tmp_path / "a"), "--identities", "2", "--images", "2", "--workers", "2"])
    assert old.exit_code == 0, old.output
    assert "note: --workers is now --threads" in old.output
    new = runner.invoke(app, ["synth", str(tmp_path / "b"), "--identities", "2", "--images", "2", "--threads", "2"])
    assert new.exit_code == 0 and "note:" not in new.output
    assert sorted(p.name for p in (tmp_path / "a").rglob("*.jpg")) == sorted(
        p.name for p in (tmp_path / "b").rglob("*.jpg")
    )
    bad = runner.invoke(app, ["annotate", str(tmp_path / "a"), "--out", str(tmp_path / "ann"), "--pairs", "4"])
    assert bad.exit_code == 2 and "note: --pairs is now --num-pairs" in bad.output
    assert "--num-pairs and --holdout need --pairs-out" in bad.output
