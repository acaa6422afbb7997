"""The one exception type for user errors; the CLI prints it in one line and exits 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FaceCliError(Exception):
    """A problem with the user's input, files or options (not a bug in facecli)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A ' did you mean ...?' suffix naming the closest choice, or '' when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def unknown_choice(kind: str, name: str, choices: Iterable[str]) -> FaceCliError:
    """Error for a name that is not one of `choices`, listing them and suggesting the closest."""
    choices = sorted(choices)
    return FaceCliError(f"unknown {kind} '{name}'{did_you_mean(name, choices)} (choose from: {', '.join(choices)})")
