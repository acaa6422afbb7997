"""Held-out verification accuracy reached by `facecli train` in a few minutes on the CPU.

Generates `facecli synth` identities, trains on all but the held-out ones and validates each epoch on
LFW-format pairs of the held-out identities (`facecli annotate --holdout`), for triplet and ArcFace on
a small backbone. The mean-colour baseline scores the same pairs by the distance between the images'
mean RGB colours. Usage: python benchmarks/train_accuracy.py [--identities 1000] [--epochs 10]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from facecli.data.annotation import annotate
from facecli.data.images import read_image
from facecli.data.pairs import read_pairs, resolve_images
from facecli.data.synth import synth
from facecli.training import TrainOptions, train
from facecli.verification.metrics import verification_report

RECIPES = {
    "triplet": {"loss": "triplet"},
    # from scratch on ~1000 identities, s=64/m=0.5 barely moves in minutes; s=32/m=0.3 trains at once
    "arcface s=32 m=0.3": {"loss": "arcface", "scale": 32.0, "margin": 0.3},
}


def mean_colour_accuracy(pairs_file: Path, root: Path) -> float:
    """10-fold accuracy of scoring each pair by minus the distance between mean colours."""
    pairs = read_pairs(pairs_file)
    files = resolve_images(pairs, root)
    colour = {name: read_image(path).reshape(-1, 3).mean(0) for name, path in files.items()}
    scores = -np.array([np.linalg.norm(colour[a] - colour[b]) for a, b in zip(pairs.left, pairs.right, strict=True)])
    return verification_report(scores, pairs.labels, "euclidean", pairs.folds).accuracy_mean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=1000)
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--holdout", type=int, default=50)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--backbone", default="timm/resnet10t")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()

    table = Table(title=f"{args.identities} synth identities x {args.images} ({args.holdout} held out), {args.size}px")
    for column in ("method", "held-out 10-fold acc", "AUC", "epochs", "minutes"):
        table.add_column(column, justify="left" if column == "method" else "right")
    with tempfile.TemporaryDirectory() as tmp:
        faces, work = Path(tmp) / "faces", Path(tmp)
        synth(faces, identities=args.identities, images=args.images, size=args.size, seed=1)
        annotate(faces, out_dir=work, pairs=600, pairs_out=work / "pairs.txt", holdout=args.holdout, seed=0)
        table.add_row("mean colour (baseline)", f"{mean_colour_accuracy(work / 'pairs.txt', faces):.3f}", "", "", "")
        for name, recipe in RECIPES.items():
            options = TrainOptions(
                data=work / "cls_train.txt",
                run_dir=work / name.split()[0],
                backbone=args.backbone,
                img_size=args.size,
                epochs=args.epochs,
                lr=2e-3,
                warmup_epochs=0.5,
                val_pairs=work / "pairs.txt",
                val_root=faces,
                device="cpu",
                **recipe,
            )
            result = train(options)
            last = result.history[-1]
            table.add_row(
                f"{name} ({args.backbone})",
                f"{last['val_accuracy']:.3f}",
                f"{last['val_auc']:.3f}",
                str(result.epochs_done),
                f"{result.seconds / 60:.1f}",
            )
    Console().print(table)


if __name__ == "__main__":
    main()
