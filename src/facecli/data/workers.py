"""Loader worker processes: how many, how they start, and how each one sets itself up."""

from __future__ import annotations

import multiprocessing
import os
import signal

import cv2

from facecli.data.parent_death import die_with_parent

WORKER_MODULES = ["facecli.data.training_set", "facecli.embed.loader"]


def default_workers() -> int:
    """Loader processes: all cores but one for the model, at most 8."""
    return max(0, min(8, (os.cpu_count() or 1) - 1))


def worker_start(workers: int) -> multiprocessing.context.BaseContext | None:
    """How loader workers start: from a forkserver where there is one, since a worker forked after the
    parent used OpenCV's thread pool deadlocks inside OpenCV. The forkserver dies with this process
    (SIGKILL included): it imports forkserver_preload first, and each worker asks the same of the forkserver."""
    if not workers or "forkserver" not in multiprocessing.get_all_start_methods():
        return None
    context = multiprocessing.get_context("forkserver")
    # first tie the forkserver to this process, then import once what every worker needs (torch, OpenCV):
    # each worker then starts in a fraction of a second instead of importing them again
    context.set_forkserver_preload(["facecli.data.forkserver_preload", "__main__", *WORKER_MODULES])
    return context


def init_worker(worker_id: int) -> None:
    """Set up one loader worker: it dies with its parent, Ctrl-C is the main process's to handle, one OpenCV
    thread, lower priority."""
    die_with_parent()
    # the main process stops between steps (training) or raises (eval); a worker must not die first
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # where workers and the model share cores, the model's threads should not wait for a worker
    # (about 88% -> 92-97% busy for mobilenet on 2 CPU cores)
    cv2.setNumThreads(1)
    os.nice(5)
