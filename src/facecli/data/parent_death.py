"""A process that the kernel kills when the process that started it dies, however that one dies, and one
that its parent gave up while it was starting, which ends quietly."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import traceback
from types import TracebackType

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """Ask Linux for SIGKILL when the parent goes; exit at once if it is already gone. No-op elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent == 1 or os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def quiet_when_abandoned(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    """An excepthook for the forkserver's children: a worker whose parent let go of it while it was starting
    (its semaphore already unlinked: a Ctrl-C as the loader starts) ends without a traceback; any other
    failure is reported as Python reports it."""
    abandoned = issubclass(kind, FileNotFoundError) and any(
        frame.f_code.co_name == "__setstate__" and frame.f_code.co_filename.endswith("synchronize.py")
        for frame, _ in traceback.walk_tb(tb)
    )
    if not abandoned:
        sys.__excepthook__(kind, value, tb)
