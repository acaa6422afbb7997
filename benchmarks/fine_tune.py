"""Fine-tuning against training from scratch on a small new set, at the same number of steps (each with
the lr its recipe chooses: 2e-3 from scratch, 2e-4 fine-tuning).

Pretrains on one synthetic population, then trains on a small disjoint one (20 identities x 5 images)
twice: from the pretrained model (`--init`) and from scratch, with the same recipe and steps, and
verifies both on pairs of 10 further identities of the new population. Usage:
python benchmarks/fine_tune.py [--pretrain-identities 300] [--epochs 30]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from facecli.data.annotation import annotate
from facecli.data.synth import synth
from facecli.training import TrainOptions, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain-identities", type=int, default=300)
    parser.add_argument("--pretrain-epochs", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=30, help="Epochs on the small set, the same for both.")
    args = parser.parse_args()
    table = Table(title="20 new identities x 5 images, verified on pairs of 10 others (2-core CPU)")
    for column in ("start", "held-out 10-fold acc", "AUC", "steps", "minutes"):
        table.add_column(column, justify="left" if column == "start" else "right")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        synth(work / "pre", identities=args.pretrain_identities, images=8, size=32, seed=21)
        common = dict(backbone="timm/resnet10t", img_size=32, embedding_size=128, device="cpu")
        pre = train(
            TrainOptions(
                data=work / "pre", run_dir=work / "pre_run", loss="arcface", epochs=args.pretrain_epochs, **common
            )
        )
        synth(work / "new", identities=30, images=5, size=32, seed=22)  # another seed: other identities
        annotate(work / "new", out_dir=work, pairs=160, pairs_out=work / "pairs.txt", holdout=10, seed=0)
        small = dict(data=work / "cls_train.txt", loss="triplet", epochs=args.epochs,
                     val_pairs=work / "pairs.txt", val_root=work / "new", **common)  # fmt: skip
        table.add_row("pretraining", "", "", str(pre.steps), f"{pre.seconds / 60:.1f}")
        for name, extra in (
            ("from scratch", {}),
            ("--init (fine-tune)", {"init": work / "pre_run" / "best.safetensors"}),
        ):
            started = time.perf_counter()
            result = train(TrainOptions(run_dir=work / name.split()[0], **small, **extra))
            last = result.history[-1]
            table.add_row(
                name, f"{last['val_accuracy']:.3f}", f"{last['val_auc']:.3f}", str(result.steps),
                f"{(time.perf_counter() - started) / 60:.1f}",
            )  # fmt: skip
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
