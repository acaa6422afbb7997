"""A wrong option, value or command name is one `error:` line naming the help to read, exit code 2, like every
other user error (click's usage text and boxed message were five lines or more)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from facecli.cli import app

runner = CliRunner()

CASES = [
    (["eval", "--folds", "abc"], "Invalid value for '--folds'", "facecli eval --help"),
    (["train", "--nproc", "0"], "Invalid value for '--nproc'", "facecli train --help"),
    (["models", "--kind", "loss"], "No such option: --kind", "facecli models --help"),
    (["eval", "--pairs"], "Option '--pairs' requires an argument", "facecli eval --help"),
    (["compare"], "Missing argument 'a'", "facecli compare --help"),
    (["evl"], "No such command 'evl'. Did you mean 'eval'?", "facecli --help"),
    (["--bogus"], "No such option: --bogus", "facecli --help"),
]


@pytest.mark.parametrize(("args", "says", "help_command"), CASES, ids=[" ".join(a) for a, _, _ in CASES])
def test_a_usage_error_is_one_line_naming_the_help(args, says, help_command):
    result = runner.invoke(app, args, prog_name="facecli")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert says in lines[0] and f"(see '{help_command}')" in lines[0], lines[0]


def test_the_installed_command_prints_one_line_on_stderr_and_nothing_on_stdout():
    done = subprocess.run([sys.executable, "-m", "facecli", "eval", "--folds", "abc"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stdout == "" and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr


def test_help_and_a_bare_command_still_show_the_help():
    assert runner.invoke(app, ["compare", "--help"]).exit_code == 0
    bare = runner.invoke(app, [])
    assert "Usage" in bare.output and "error:" not in bare.output
