"""Shared fixtures: seeded, single-threaded torch and tiny generated datasets."""

from __future__ import annotations

import atexit
import os
import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.processes import MARKER, marked_processes

# copies of ../shared/reference's small files (origins in THIRD_PARTY_NOTICES.md): a fresh clone skips nothing
REFERENCE = Path(__file__).resolve().parent / "fixtures" / "reference"
RUN = os.environ.setdefault(MARKER, uuid.uuid4().hex)  # inherited by every process the tests start
# the automatic backend's ONNX exports go to a folder of this run, shared by its workers, not to ~/.cache
if "FACECLI_CACHE" not in os.environ:
    os.environ["FACECLI_CACHE"] = tempfile.mkdtemp(prefix="facecli-test-cache-")
    atexit.register(shutil.rmtree, os.environ["FACECLI_CACHE"], ignore_errors=True)  # by the process that made it
LEFTOVER_GRACE_S = 15


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any process it started is still alive at the end (xdist: checked once, at the top)."""
    if hasattr(session.config, "workerinput") or os.environ.get(MARKER) != RUN:
        return
    mine = {os.getpid(), os.getppid()}
    deadline = time.monotonic() + LEFTOVER_GRACE_S
    while (left := marked_processes(RUN, mine)) and time.monotonic() < deadline:
        time.sleep(0.5)
    if left:
        session.config.get_terminal_writer().line(f"processes left behind by the tests: {left}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def reference() -> Path:
    """tests/fixtures/reference: reference outputs and manifests, real photos, the LFW pairs file."""
    return REFERENCE


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic dataset: 6 identities x 6 images of 32 px."""
    from facecli.data.synth import synth

    root = tmp_path_factory.mktemp("synth") / "faces"
    synth(root, identities=6, images=6, size=32, seed=1)
    return root
