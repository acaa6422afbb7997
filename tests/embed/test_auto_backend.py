"""`--backend auto`: on the CPU a model runs through ONNX Runtime, exported once into the cache and checked;
its scores equal PyTorch's within 1e-4; a model that does not export runs on PyTorch, tried once."""

from __future__ import annotations

import numpy as np
import pytest

from facecli.checkpoint import save_model
from facecli.cli.logs import show_library_logs
from facecli.embed import EmbedOptions, OnnxEmbedder, TorchEmbedder, auto_backend, embed_files
from facecli.embed.auto_backend import open_model
from facecli.models import create_model
from facecli.runtime import resolve_runtime

CPU = resolve_runtime("cpu", "fp32")


@pytest.fixture
def model_file(tmp_path, monkeypatch):
    show_library_logs()  # the notes these tests read, as every command shows them (not only after one ran)
    monkeypatch.setenv("FACECLI_CACHE", str(tmp_path / "cache"))
    save_model(create_model("mobilenet", input_size=32, embedding_size=16).eval(), tmp_path / "m.safetensors")
    return tmp_path / "m.safetensors"


def test_auto_runs_onnx_on_the_cpu_with_the_same_embeddings_as_torch(model_file, synth_dataset, capsys):
    files = sorted(synth_dataset.rglob("*.jpg"))[:12]
    auto = embed_files(model_file, files, EmbedOptions(CPU, "auto", batch_size=5, workers=0)).vectors
    torch = embed_files(model_file, files, EmbedOptions(CPU, "torch", batch_size=5, workers=0)).vectors
    assert np.abs(auto - torch).max() < 1e-4
    assert "backend: onnxruntime (auto" in " ".join(capsys.readouterr().err.split())
    (exported,) = (model_file.parent / "cache" / "onnx").glob("*.onnx")
    written = exported.stat().st_mtime_ns
    assert isinstance(open_model(model_file, "auto", CPU), OnnxEmbedder)
    assert exported.stat().st_mtime_ns == written  # reused, not exported again


def test_a_model_that_does_not_export_runs_on_torch_with_a_note_and_is_tried_once(model_file, monkeypatch, capsys):
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("Unsupported: an operator the exporter cannot trace")

    monkeypatch.setattr(auto_backend, "export_onnx", failing)
    for _ in range(2):
        assert isinstance(open_model(model_file, "auto", CPU), TorchEmbedder)
    assert len(calls) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert err.count("backend: torch (its ONNX export failed (Unsupported: an operator") == 2


def test_a_damaged_cached_export_is_dropped_and_the_model_runs_on_torch(model_file, capsys):
    open_model(model_file, "auto", CPU)
    (exported,) = (model_file.parent / "cache" / "onnx").glob("*.onnx")
    exported.write_bytes(exported.read_bytes()[:-100])
    assert isinstance(open_model(model_file, "auto", CPU), TorchEmbedder)
    assert not exported.exists()
    assert isinstance(open_model(model_file, "auto", CPU), OnnxEmbedder)  # exported again


def test_an_unwritable_onnx_cache_runs_the_model_on_torch_with_a_note(model_file, monkeypatch, capsys):
    blocker = model_file.parent / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("FACECLI_CACHE", str(blocker / "cache"))  # as a read-only $HOME refuses it
    assert isinstance(open_model(model_file, "auto", CPU), TorchEmbedder)
    said = " ".join(capsys.readouterr().err.split())
    assert "backend: torch (the ONNX cache cannot be written:" in said and "FACECLI_CACHE" in said


def test_an_export_failing_on_a_full_disk_is_not_remembered_as_the_models(model_file, monkeypatch):
    import shutil

    def no_space(*args, **kwargs):
        raise RuntimeError("[Errno 28] No space left on device")

    monkeypatch.setattr(auto_backend, "export_onnx", no_space)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 100, 100))
    assert isinstance(open_model(model_file, "auto", CPU), TorchEmbedder)
    assert not list((model_file.parent / "cache").rglob("*.failed"))
    monkeypatch.undo()  # room again, the exporter back: the model runs on ONNX Runtime
    monkeypatch.setenv("FACECLI_CACHE", str(model_file.parent / "cache"))
    assert isinstance(open_model(model_file, "auto", CPU), OnnxEmbedder)
