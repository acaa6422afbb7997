"""A real `facecli serve` process on loopback, for the tests: started on a free port, waited for, stopped."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

START_S = 120  # loading the model and exporting it once to ONNX on a busy 2-core machine


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kwargs)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start(args: list[str], log: Path) -> Server:
    """`facecli serve ARGS --port 0` in its own session, once it answers /readyz."""
    out = open(log, "w")  # noqa: SIM115 - the process writes to it after this returns
    process = subprocess.Popen(
        [sys.executable, "-m", "facecli", "serve", *args, "--port", "0", "--device", "cpu"],
        stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        found = re.search(r"on (http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"))
        if found:
            server = Server(found.group(1), process, log)
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200:
                    return server
        if process.poll() is not None:
            raise AssertionError(f"facecli serve exited with {process.returncode}:\n{log.read_text()}")
        time.sleep(0.1)
    stop(process)
    raise AssertionError(f"facecli serve did not become ready in {START_S} s:\n{log.read_text()}")


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> int:
    """Signal the server (SIGTERM: a clean shutdown; SIGKILL: a crash) and wait for it."""
    if process.poll() is None:
        os.killpg(process.pid, sig)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.wait()


@contextlib.contextmanager
def running(args: list[str], log: Path) -> Iterator[Server]:
    server = start(args, log)
    try:
        yield server
    finally:
        stop(server.process)
