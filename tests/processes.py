"""Finding processes by session or by an environment marker, from /proc (Linux)."""

from __future__ import annotations

from pathlib import Path

MARKER = "FACECLI_TEST_RUN"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # gone meanwhile, or not ours to read
        return b""


def _cmdline(pid: int) -> str:
    return _read(Path(f"/proc/{pid}/cmdline")).replace(b"\0", b" ").decode(errors="replace").strip()


def session_processes(sid: int) -> list[str]:
    """'pid command' of every live process in session `sid`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _read(stat).rsplit(b")", 1)[-1].split()
        if len(fields) > 3 and fields[0] != b"Z" and int(fields[3]) == sid:
            found.append(f"{stat.parent.name} {_cmdline(int(stat.parent.name))}")
    return found


def marked_processes(value: str, exclude: set[int]) -> list[str]:
    """'pid command' of every live process whose environment holds MARKER=value, but `exclude`."""
    needle = f"{MARKER}={value}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        pid = int(environ.parent.name)
        if pid in exclude or needle not in _read(environ).split(b"\0"):
            continue
        state = _read(Path(f"/proc/{pid}/stat")).rsplit(b")", 1)[-1].split()[:1]
        if state and state[0] != b"Z":
            found.append(f"{pid} {_cmdline(pid)}")
    return found
