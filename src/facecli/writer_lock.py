"""One writer at a time for a run folder or a gallery index: an exclusive `flock` on a lock file that names
its holder. The kernel drops the lock when the holder dies however it dies, so a lock file whose lock is
free but still names a holder was left by a crashed one, and is taken over."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from facecli.errors import FaceCliError


def _holder(text: str) -> str:
    try:
        info = json.loads(text)
        return f"pid {info['pid']} on {info['host']}, since {info['since']}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"


@contextlib.contextmanager
def writer_lock(lock_file: Path, what: str) -> Iterator[str | None]:
    """Hold `lock_file` while the block runs; yields a note when a crashed holder's lock was taken over.

    Refuses, naming the holder, when another live process holds it."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(os.pread(fd, 4096, 0).decode(errors="replace"))
            raise FaceCliError(f"{what} is being written by another facecli process ({holder}); wait for it") from None
        left = os.pread(fd, 4096, 0).decode(errors="replace")
        note = f"took over the lock on {what} left by a process that is gone ({_holder(left)})" if left else None
        since = time.strftime("%Y-%m-%d %H:%M:%S")
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)
        try:
            yield note
        finally:
            os.ftruncate(fd, 0)  # an empty lock file: the last holder ended cleanly (it is not removed, as
            # removing it would let a process that opened it meanwhile lock a file no longer there)
    finally:
        os.close(fd)  # releases the lock
