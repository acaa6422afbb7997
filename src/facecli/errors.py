"""The one exception type for user errors; the CLI prints it in one line and exits 2."""

from __future__ import annotations

import difflib
import errno
import os
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


# What to do about the operating system's refusals a user meets: the error boundary adds it to the path
OS_ADVICE = {
    errno.EACCES: "check its permissions, or choose another path",
    errno.EPERM: "check its permissions, or choose another path",
    errno.EROFS: "the file system is read-only: choose a path on a writable one",
    errno.ENOSPC: "the disk is full: free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is used up: free some space or write elsewhere",
    errno.ENOTDIR: "a part of this path is a file, not a folder: choose another path",
    errno.EISDIR: "this is a folder where a file is meant: name a file",
    errno.ENOENT: "check the path",
    errno.EEXIST: "something is already there: choose another path",
    errno.ELOOP: "symbolic links lead in a loop: fix the link",
    errno.ENAMETOOLONG: "choose a shorter path",
    errno.EMFILE: "too many files open: raise the limit (ulimit -n) or use fewer workers",
}


def os_error(exc: OSError) -> FaceCliError:
    """An OSError as one line naming the path (both, for a rename) and what to do about it."""
    paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    reason = (exc.strerror or str(exc) or type(exc).__name__).lower()
    advice = OS_ADVICE.get(exc.errno)
    if exc.errno == errno.EEXIST and exc.filename is not None and os.path.isfile(exc.filename):
        reason, advice = "a file is there", "a folder is meant: choose another path"  # mkdir over a file
    said = f"{reason} ({advice})" if advice else reason
    return FaceCliError(f"{paths}: {said}" if paths else said)
