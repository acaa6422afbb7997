"""int8 against fp32 ONNX Runtime, in one run on this CPU: model-only and whole-eval images/s and file size for
each registry backbone at its native size, then held-out accuracy and TAR of a trained model both ways.

Usage: python benchmarks/int8.py [--backbones mobilenet iresnet18 ...] [--batch 32] [--repeats 5] [--no-train]
    [--no-speed] [--trained auto ...] [--train-identities 45] [--held-out 15] [--pairs 300]
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


# the trained models: the recipe's own, and the ArcFace repo's pairing (a larger trunk) at the same size
TRAINED = {"auto": {}, "arcface + iresnet18": {"loss": "arcface", "backbone": "iresnet18", "img_size": 32}}


def accuracy(work: Path, args: argparse.Namespace) -> Table:
    """Models trained with the recipe on synth faces at 32 px, verified fp32 and int8 on pairs of held-out
    identities (the int8 file through its own calibration on training faces)."""
    identities = args.train_identities + args.held_out
    synth(work / "train_faces", identities=identities, images=10, size=32, seed=5)
    heldout = work / "heldout.txt"
    annotate(work / "train_faces", out_dir=work, pairs=args.pairs, pairs_out=heldout, holdout=args.held_out)
    title = (f"held-out verification: synth {args.train_identities} x 10 at 32 px trained, {args.pairs} pairs of "
             f"{args.held_out} other identities")  # fmt: skip
    table = Table(title=title)
    for column in ("model", "graph", "accuracy", "TAR @ FAR 1e-2", "TAR @ FAR 1e-3", "AUC"):
        table.add_column(column, justify="right")
    for name in args.trained:
        run = work / name.replace(" ", "").replace("+", "_")
        train(TrainOptions(data=work / "cls_train.txt", run_dir=run / "run", device="cpu", **TRAINED[name]))
        kept = run / "run" / "best.safetensors"
        kept = kept if kept.exists() else run / "run" / "last.safetensors"
        fp32, int8 = both(kept, work / "cls_train.txt", run)
        for label, path in (("fp32", fp32), ("int8", int8)):
            pairs = PairsInput(work / "heldout.txt", root=work / "train_faces")
            report = evaluate(checkpoint=path, pairs=pairs, embedding=ONNX)
            tar = [f"{report.tar_at_far.get(far, float('nan')):.4f}" for far in ("0.01", "0.001")]
            table.add_row(name, label, f"{report.accuracy_mean:.4f}", *tar, f"{report.auc:.4f}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-train", action="store_true", help="Speed only.")
    parser.add_argument("--no-speed", action="store_true", help="Accuracy only.")
    parser.add_argument("--trained", nargs="+", default=list(TRAINED), choices=list(TRAINED))
    parser.add_argument("--train-identities", type=int, default=45)
    parser.add_argument("--held-out", type=int, default=15)
    parser.add_argument("--pairs", type=int, default=300)
    args = parser.parse_args()
    console = Console(width=180)
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_speed:
            console.print(speed(args, Path(tmp)))
        if not args.no_train:
            console.print(accuracy(Path(tmp), args))


if __name__ == "__main__":
    main()
