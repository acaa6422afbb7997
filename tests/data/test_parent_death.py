"""A loader worker its parent gave up while it was starting (Ctrl-C as the loader starts) ends quietly; any
other start-up failure is still reported."""

import multiprocessing.synchronize
import sys

import pytest

from facecli.data.parent_death import quiet_when_abandoned


def _abandoned_worker_error():
    """The error a forkserver child meets when the parent has already unlinked the worker's semaphore."""
    lock = multiprocessing.synchronize.Lock.__new__(multiprocessing.synchronize.Lock)
    try:
        lock.__setstate__((0, 1, 1, "/facecli-test-semaphore-that-is-gone"))
    except FileNotFoundError:
        return sys.exc_info()
    pytest.skip("this platform rebuilds semaphores without opening them by name")


def test_a_worker_abandoned_mid_start_up_ends_without_a_traceback(capsys):
    quiet_when_abandoned(*_abandoned_worker_error())
    assert capsys.readouterr().err == ""


def test_any_other_start_up_failure_is_reported(capsys):
    try:
        open("/facecli-test-no-such-file")  # a FileNotFoundError, but not a gone semaphore
    except FileNotFoundError:
        quiet_when_abandoned(*sys.exc_info())
    assert "Traceback" in capsys.readouterr().err
