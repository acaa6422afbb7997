"""What `facecli eval` imports and its peak memory: which heavy libraries a plain eval loads, and the
process's peak resident memory, on a small generated set (so the libraries dominate).

The eval runs twice in fresh processes: the first exports the model to the ONNX cache (--backend auto
on a CPU), the second is what every later eval does. Usage: python benchmarks/eval_imports.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

HEAVY = ("torch", "torchvision", "onnxruntime", "onnx", "sklearn", "scipy", "matplotlib", "tensorboard", "faiss",
         "timm", "cv2", "pandas", "pyarrow", "PIL")  # fmt: skip

PROBE = """
import resource, sys
def run():
    sys.argv = ["facecli", *sys.argv[1:]]
    try:
        from facecli.__main__ import main
        main()
    except SystemExit as stop:
        assert not stop.code, stop.code
    loaded = [m for m in {heavy!r} if m in sys.modules]
    print("LOADED", ",".join(loaded), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
if __name__ == "__main__":
    run()
"""


def main() -> None:
    from facecli.checkpoint import save_model
    from facecli.data.annotation import annotate
    from facecli.data.synth import synth
    from facecli.models import create_model

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        synth(root / "faces", identities=10, images=6, size=64, seed=1)
        annotate(root / "faces", out_dir=root, holdout=5, pairs=100, folds=2, pairs_out=root / "pairs.txt")
        save_model(create_model("mobilenet", input_size=64, embedding_size=32).eval(), root / "model.safetensors")
        (root / "probe.py").write_text(PROBE.format(heavy=HEAVY))
        command = [sys.executable, str(root / "probe.py"), "eval", "-c", str(root / "model.safetensors"), "--pairs",
                   str(root / "pairs.txt"), "--root", str(root / "faces"), "--folds", "2"]  # fmt: skip
        env = {"FACECLI_CACHE": str(root / "cache"), "PATH": "/usr/bin:/bin"}
        table = Table(title="facecli eval on 60 images, 100 pairs (mobilenet 64 px), CPU")
        for column in ("run", "peak RSS MiB", "heavy libraries loaded"):
            table.add_column(column)
        for run in ("first (exports to the ONNX cache)", "later"):
            done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
            line = next(line for line in done.stdout.splitlines() if line.startswith("LOADED"))
            _, loaded, peak = line.split(" ")
            table.add_row(run, f"{float(peak):.0f}", loaded.replace(",", ", "))
        Console(width=140).print(table)


if __name__ == "__main__":
    main()
