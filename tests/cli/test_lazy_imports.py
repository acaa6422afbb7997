"""Commands import only what they use: eval leaves out scikit-learn, scipy, matplotlib and torchvision;
training leaves out ONNX Runtime (measured effect on eval's memory: benchmarks/eval_imports.py)."""

import subprocess
import sys

import pytest

from facecli.checkpoint import save_model
from facecli.data.annotation import annotate
from facecli.data.synth import synth
from facecli.models import create_model

PROBE = """
import sys
def run():
    sys.argv = ["facecli", *sys.argv[1:]]
    from facecli.__main__ import main
    try:
        main()
    except SystemExit as stop:
        assert not stop.code, stop.code
    print("LOADED", " ".join(sorted(m for m in sys.modules if "." not in m)))
if __name__ == "__main__":
    run()
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lazy")
    synth(tmp / "faces", identities=6, images=4, size=32, seed=2)
    annotate(tmp / "faces", out_dir=tmp, holdout=3, pairs=20, folds=2, pairs_out=tmp / "pairs.txt")
    save_model(create_model("mobilenet", input_size=32, embedding_size=8).eval(), tmp / "model.safetensors")
    (tmp / "probe.py").write_text(PROBE)
    return tmp


def _loaded(world, *argv):
    done = subprocess.run([sys.executable, str(world / "probe.py"), *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return set(next(line for line in done.stdout.splitlines() if line.startswith("LOADED")).split()[1:])


def test_eval_imports_neither_scikit_learn_nor_matplotlib_nor_torchvision(world):
    loaded = _loaded(world, "eval", "-c", str(world / "model.safetensors"), "--pairs", str(world / "pairs.txt"),
                     "--root", str(world / "faces"), "--folds", "2", "--workers", "0")  # fmt: skip
    assert "onnxruntime" in loaded  # the automatic backend on a CPU
    assert not loaded & {"sklearn", "scipy", "matplotlib", "torchvision"}


@pytest.mark.slow
def test_training_does_not_import_onnx_runtime(world, tmp_path):
    run = str(tmp_path / "run")
    loaded = _loaded(world, "train", "--data", str(world / "faces"), "--run-dir", run, "--epochs", "1",
                     "--img-size", "32", "--workers", "0", "--device", "cpu", "--backbone", "mobilenet")  # fmt: skip
    assert "torch" in loaded and not loaded & {"onnxruntime", "onnx", "sklearn"}
