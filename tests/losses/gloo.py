"""Two gloo processes on loopback, each calling a test module's function with its rank, a port and a folder."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_two_ranks(function: str, out: Path) -> list[int]:
    """Run `function` ('tests.losses.module:name', taking rank, port, out) in two processes; their exit codes."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    module, name = function.split(":")
    code = f"import sys; from {module} import {name} as r; r(int(sys.argv[1]), {port}, {str(out)!r})"
    ranks = [subprocess.Popen([sys.executable, "-c", code, str(rank)], cwd=ROOT) for rank in range(2)]
    return [rank.wait(timeout=120) for rank in ranks]
