"""Loader worker processes: how many, how they start, and how each one sets itself up."""

from __future__ import annotations

import multiprocessing
import os
import signal

import cv2


def default_workers() -> int:
    """Loader processes: all cores but one for the model, at most 8."""
    return max(0, min(8, (os.cpu_count() or 1) - 1))


def worker_start(workers: int) -> str | None:
    """How loader workers start: from a forkserver where there is one, since a worker forked after the
    parent used OpenCV's thread pool deadlocks inside OpenCV."""
    return "forkserver" if workers and "forkserver" in multiprocessing.get_all_start_methods() else None


def init_worker(worker_id: int) -> None:
    """Set up one loader worker: Ctrl-C is the main process's to handle, one OpenCV thread, lower priority."""
    # the main process stops between steps (training) or raises (eval); a worker must not die first
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # where workers and the model share cores, the model's threads should not wait for a worker
    # (about 88% -> 92-97% busy for mobilenet on 2 CPU cores)
    cv2.setNumThreads(1)
    os.nice(5)
