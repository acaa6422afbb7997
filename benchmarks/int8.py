"""int8 against fp32 ONNX Runtime, in one run on this CPU: model-only and whole-eval images/s and file size for
each registry backbone at its native size, then held-out accuracy and TAR of a trained model both ways.

Usage: python benchmarks/int8.py [--backbones mobilenet iresnet18 ...] [--batch 32] [--repeats 5] [--no-train]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from rich.console import Console
from rich.table import Table

from facecli.checkpoint import save_model
from facecli.data.annotation import annotate
from facecli.data.images import image_files, read_image
from facecli.data.synth import synth
from facecli.embed import EmbedOptions
from facecli.exporting import export
from facecli.exporting.int8 import cpu_has_vnni
from facecli.models import create_model
from facecli.runtime import resolve_runtime
from facecli.training import TrainOptions, train
from facecli.verification import PairsInput, evaluate

BACKBONES = ("mobilenet", "inception_resnetv1", "iresnet18", "iresnet50", "timm/resnet10t")
ONNX = EmbedOptions(resolve_runtime("cpu"), backend="onnx")


def model_only(path: Path, x: np.ndarray, repeats: int) -> float:
    """Images per second of the graph alone on batch `x` (one warm-up run first)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    session.run(None, {"input": x})
    start = time.perf_counter()
    for _ in range(repeats):
        session.run(None, {"input": x})
    return repeats * len(x) / (time.perf_counter() - start)


def whole_eval(path: Path, pairs: Path, faces: Path) -> tuple[float, object]:
    """`facecli eval` on the pairs with the file: images per second (read, decode, embed) and the report."""
    start = time.perf_counter()
    report = evaluate(checkpoint=path, pairs=PairsInput(pairs, root=faces), embedding=ONNX, folds=2)
    return report.images / (time.perf_counter() - start), report


def both(checkpoint: Path, calibrate: Path, work: Path, verify: bool = True) -> tuple[Path, Path]:
    """The fp32 and int8 exports of `checkpoint` (the int8 one checked against fp32 unless `verify` is off)."""
    fp32, int8 = work / f"{checkpoint.stem}.onnx", work / f"{checkpoint.stem}_int8.onnx"
    export(checkpoint=checkpoint, out=fp32)
    export(checkpoint=checkpoint, out=int8, int8=True, calibrate=calibrate, verify=verify)
    return fp32, int8


def min_cosine(fp32: Path, int8: Path, x: np.ndarray) -> float:
    """The worst cosine between the two graphs' embeddings of batch `x`."""
    a, b = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
            for p in (fp32, int8))  # fmt: skip
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def speed(args: argparse.Namespace, work: Path) -> Table:
    table = Table(title=f"int8 against fp32, ONNX Runtime {ort.__version__}, VNNI: {cpu_has_vnni()}")
    for column in ("backbone", "input", "model-only fp32", "int8", "x", "eval fp32", "int8", "x", "MB fp32", "int8",
                   "min cosine"):  # fmt: skip
        table.add_column(column, justify="right")
    for name in args.backbones:
        model = create_model(name)
        model.train()
        with torch.no_grad():  # batch-norm statistics away from the identity, as a trained model has
            model(torch.randn(8, 3, *model.config.input_size))
        side = model.config.input_size[0]
        folder = work / name.replace("/", "_")
        synth(folder / "faces", identities=20, images=10, size=side, seed=1)  # 200 faces, enough to pass start-up
        annotate(folder / "faces", out_dir=folder, pairs=150, pairs_out=folder / "pairs.txt")
        checkpoint = folder / "model.safetensors"
        save_model(model.eval(), checkpoint)
        fp32, int8 = both(checkpoint, folder / "faces", folder, verify=False)  # untrained: cosine reported below
        x = model.preprocess([read_image(p) for p in image_files(folder / "faces")[: args.batch]]).numpy()
        rates = [model_only(path, x, args.repeats) for path in (fp32, int8)]
        evals = [whole_eval(path, folder / "pairs.txt", folder / "faces")[0] for path in (fp32, int8)]
        sizes = [path.stat().st_size / 1e6 for path in (fp32, int8)]
        table.add_row(name, f"{side}", f"{rates[0]:.1f}", f"{rates[1]:.1f}", f"{rates[1] / rates[0]:.2f}",
                      f"{evals[0]:.1f}", f"{evals[1]:.1f}", f"{evals[1] / evals[0]:.2f}", f"{sizes[0]:.1f}",
                      f"{sizes[1]:.1f}", f"{min_cosine(fp32, int8, x):.4f}")  # fmt: skip
    return table


def accuracy(work: Path) -> Table:
    """A recipe model trained on synth (60 x 10 at 32 px, 15 held out), evaluated fp32 and int8."""
    synth(work / "train_faces", identities=60, images=10, size=32, seed=5)
    annotate(work / "train_faces", out_dir=work, pairs=300, pairs_out=work / "heldout.txt", holdout=15)
    run = work / "run"
    train(TrainOptions(data=work / "cls_train.txt", run_dir=run, device="cpu"))
    kept = run / "best.safetensors" if (run / "best.safetensors").exists() else run / "last.safetensors"
    fp32, int8 = both(kept, work / "cls_train.txt", work)
    table = Table(title="held-out verification, the recipe's model (synth 60 x 10, 32 px), 300 pairs")
    for column in ("model", "accuracy", "TAR @ FAR 1e-2", "AUC"):
        table.add_column(column, justify="right")
    for label, path in (("fp32", fp32), ("int8", int8)):
        report = evaluate(checkpoint=path, pairs=PairsInput(work / "heldout.txt", root=work / "train_faces"),
                          embedding=ONNX)  # fmt: skip
        table.add_row(label, f"{report.accuracy_mean:.4f}", f"{report.tar_at_far.get('0.01', float('nan')):.4f}",
                      f"{report.auc:.4f}")  # fmt: skip
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-train", action="store_true", help="Speed only.")
    args = parser.parse_args()
    console = Console(width=180)
    with tempfile.TemporaryDirectory() as tmp:
        console.print(speed(args, Path(tmp)))
        if not args.no_train:
            console.print(accuracy(Path(tmp)))


if __name__ == "__main__":
    main()
