"""Outputs: written atomically, on disk before the rename, with the permissions the user's umask gives."""

import contextlib
import os
import resource
import signal
import stat

import numpy as np
import pytest
import torch

import facecli.fileio as fileio
from facecli.checkpoint import save_model
from facecli.errors import FaceCliError
from facecli.fileio import atomic_path, write_text_atomic
from facecli.identification.gallery import Gallery
from facecli.models import create_model
from facecli.training.resume_file import save_training_state


@pytest.fixture
def umask():
    previous = os.umask(0o022)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(previous)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_get_the_permissions_of_any_new_file(tmp_path, umask, mask, mode):
    umask(mask)
    write_text_atomic(tmp_path / "report.json", "{}")
    save_model(create_model("mobilenet", input_size=32, embedding_size=8), tmp_path / "m.safetensors")
    for name in ("report.json", "m.safetensors"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_the_file_is_synced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(
        fileio.os, "fsync", lambda fd: events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))) or real_fsync(fd)
    )
    monkeypatch.setattr(fileio.os, "replace", lambda a, b: events.append(("replace", str(b))) or real_replace(a, b))
    target = tmp_path / "out.csv"
    with atomic_path(target) as tmp:
        tmp.write_text("a,b\n")
    assert [e[0] for e in events] == ["fsync", "replace", "fsync"]
    assert events[0][1].endswith(".tmp") and events[2][1] == str(tmp_path)
    assert target.read_text() == "a,b\n" and not list(tmp_path.glob("*.tmp"))


@contextlib.contextmanager
def _disk_full_after(size: int):
    """Writes past `size` bytes of any file fail, as on a full disk (RLIMIT_FSIZE: EFBIG, its signal ignored)."""
    previous_signal = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous_signal)


def _gallery(path):
    Gallery(np.ones((300, 64), np.float32), ["a"] * 300, [f"p{i}" for i in range(300)], "m", "h").save(path)


def _embeddings(path):
    """embed's .npy, as embed_to_file writes it (a file object: np.save would add .npy to a name)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.ones((2000, 64), np.float32))


WRITERS = {
    "embeddings .npy": _embeddings,
    "model": lambda p: save_model(create_model("mobilenet", input_size=32, embedding_size=8), p, force=True),
    "report": lambda p: write_text_atomic(p, "x" * 20_000),
    "gallery index": _gallery,
    "training state": lambda p: save_training_state(p, {"model": {"w": torch.ones(5000)}, "epoch": 1}),
}


@pytest.mark.parametrize("kind", list(WRITERS))
def test_a_write_that_fails_part_way_keeps_the_old_file_and_leaves_no_temporary(tmp_path, kind):
    target = tmp_path / "out"
    target.write_bytes(b"old contents")
    failed = r"out: cannot write it \(.*(File too large|unexpected pos|requested and).*\); nothing was replaced"
    with _disk_full_after(4096), pytest.raises(FaceCliError, match=failed):
        WRITERS[kind](target)
    assert target.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_rewriting_through_a_symlink_replaces_the_real_file_and_keeps_the_link(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "threshold.json").write_text("old")
    link = tmp_path / "threshold.json"
    link.symlink_to(tmp_path / "real" / "threshold.json")
    write_text_atomic(link, "new")
    assert link.is_symlink() and (tmp_path / "real" / "threshold.json").read_text() == "new"
    assert not list(tmp_path.rglob("*.tmp"))


def test_an_output_that_is_an_input_is_refused_even_with_force(tmp_path):
    from typer.testing import CliRunner

    from facecli.cli import app
    from facecli.fileio import check_not_input

    model = tmp_path / "model.safetensors"
    save_model(create_model("mobilenet", input_size=32, embedding_size=8), model)
    kept = model.read_bytes()
    link = tmp_path / "link.onnx"
    link.symlink_to(model)
    for out in (model, link):
        result = CliRunner().invoke(app, ["export", "-c", str(model), "--out", str(out), "--force"])
        assert result.exit_code == 2 and "is also an input" in result.output
    assert model.read_bytes() == kept  # the only copy of the trained weights
    check_not_input(tmp_path / "other.onnx", model)  # any other path is fine
    with pytest.raises(FaceCliError, match="is also an input"):
        check_not_input(tmp_path / "." / "model.safetensors", None, model)


def test_outputs_that_cannot_be_written_are_refused_before_any_work(tmp_path):
    from facecli.fileio import check_writable

    (tmp_path / "a_file").write_text("x")
    (tmp_path / "folder").mkdir()
    with pytest.raises(FaceCliError, match="a_file is a file, not a folder"):
        check_writable(tmp_path / "a_file" / "deeper" / "report.json")
    with pytest.raises(FaceCliError, match="folder is a folder; name a file"):
        check_writable(tmp_path / "folder", force=True)
    check_writable(tmp_path / "new" / "deeper" / "report.json")  # folders still to be made are fine


def test_an_input_that_cannot_be_read_during_a_write_is_named_and_not_blamed_on_the_output(tmp_path):
    out = tmp_path / "out.rec"
    out.write_bytes(b"old contents")
    with pytest.raises(FileNotFoundError) as raised, atomic_path(out) as tmp:
        tmp.write_bytes(b"half")
        (tmp_path / "gone.jpg").read_bytes()  # an image deleted after the command listed it
    assert raised.value.filename == str(tmp_path / "gone.jpg")  # the error boundary names it
    assert out.read_bytes() == b"old contents" and [p.name for p in tmp_path.iterdir()] == ["out.rec"]


def test_same_files_finds_a_file_named_through_a_link_or_dot_dot(tmp_path):
    from facecli.fileio import same_files

    (tmp_path / "faces" / "p1").mkdir(parents=True)
    image = tmp_path / "faces" / "p1" / "a.jpg"
    image.write_bytes(b"x")
    (tmp_path / "link").symlink_to(tmp_path / "faces", target_is_directory=True)
    named = [str(tmp_path / "link" / "p1" / "a.jpg"), str(tmp_path / "faces" / "p1" / ".." / "p1" / "a.jpg"),
             str(tmp_path / "other" / "b.jpg")]  # fmt: skip
    assert same_files({str(image.resolve())}, named) == {str(image.resolve())}
    assert same_files({str(image.resolve())}, named[2:]) == set()


def test_same_files_finds_a_copy_under_the_same_name_but_not_another_image(tmp_path):
    from facecli.fileio import same_files

    for folder, content in (("faces", b"face one"), ("copy", b"face one"), ("other", b"face two")):
        (tmp_path / folder / "p1").mkdir(parents=True)
        (tmp_path / folder / "p1" / "a.jpg").write_bytes(content)
    (tmp_path / "renamed.jpg").write_bytes(b"face one")  # the same bytes under another name: not looked at
    original = str((tmp_path / "faces" / "p1" / "a.jpg").resolve())
    assert same_files({original}, [str(tmp_path / "copy" / "p1" / "a.jpg")]) == {original}
    assert same_files({original}, [str(tmp_path / "other" / "p1" / "a.jpg"), str(tmp_path / "renamed.jpg")]) == set()
    assert same_files({original}, [str(tmp_path / "gone" / "p1" / "a.jpg")]) == set()
