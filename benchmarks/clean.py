"""`facecli clean` on a synthetic set with known label errors: precision and recall of its suspects at 10% and
30% wrong labels (and the identities split in two it finds) at several --min-margin values, with centres from
a Sub-center ArcFace run's head, from that run's embeddings alone, and from the embeddings of a judge: a model
trained on other identities, which never saw the wrong labels; then held-out accuracy of training on the list
cleaned with the default rule against training on the noisy one.

Usage: python benchmarks/clean.py [--shares 0.1 0.3] [--identities 60] [--images 20] [--split 3]
       [--judge-identities 1000] [--margins 0 5 10 15 20]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from facecli.cleaning import clean
from facecli.cleaning.suspects import MIN_MARGIN
from facecli.data.annotation import annotate
from facecli.data.synth import synth
from facecli.embed import EmbedOptions
from facecli.errors import FaceCliError
from facecli.runtime import resolve_runtime
from facecli.training import TrainOptions, train
from facecli.verification import PairsInput, evaluate

EMBEDDING = EmbedOptions(resolve_runtime("cpu"), backend="torch")


def noisy_list(clean_list: Path, out: Path, share: float, split: int, seed: int = 0) -> tuple[set[str], set[str]]:
    """A copy of `clean_list` with `share` of its labels moved to another identity and `split` identities half
    renamed to new ids; returns the moved paths and the renamed ids."""
    rng = np.random.default_rng(seed)
    rows = [line.split(";", 1) for line in clean_list.read_text().splitlines() if line.strip()]
    ids = sorted({int(i) for i, _ in rows})
    moved, renamed = set(), set()
    for n, name in enumerate(ids[:split]):  # one person under two names: every second image of theirs
        new = str(max(ids) + 1 + n)
        renamed.add(new)
        for k, row in enumerate(r for r in rows if r[0] == str(name)):
            if k % 2:
                row[0] = new
    for row in rows:
        if row[0] not in renamed and rng.random() < share:
            row[0] = str(rng.choice([i for i in ids if str(i) != row[0]]))
            moved.add(row[1])
    out.write_text("".join(f"{i};{p}\n" for i, p in rows))
    return moved, renamed


def scored(found: Path, moved: set[str], renamed: set[str]) -> dict:
    suspects = set(pd.read_csv(found / "suspects.csv")["path"])
    pairs = pd.read_csv(found / "same_person.csv", dtype=str)
    hits = len(suspects & moved)
    named = {frozenset(p) for p in zip(pairs["identity"], pairs["other_identity"], strict=True)}
    return {
        "precision": hits / max(len(suspects), 1), "recall": hits / max(len(moved), 1), "suspects": len(suspects),
        "split found": sum(any(r in p for p in named) for r in renamed), "same-person pairs": len(named),
    }  # fmt: skip


def held_out(run: Path, pairs: Path, faces: Path) -> float:
    kept = run / "best.safetensors" if (run / "best.safetensors").exists() else run / "last.safetensors"
    return evaluate(checkpoint=kept, pairs=PairsInput(pairs, root=faces), embedding=EMBEDDING).accuracy_mean


def judge(work: Path, identities: int) -> Path:
    """A model trained with the recipe on `identities` other synth identities (another seed): none of the set's."""
    synth(work / "judge_faces", identities=identities, images=12, size=32, seed=11)
    run = work / "judge"
    train(TrainOptions(data=work / "judge_faces", run_dir=run, device="cpu"))
    return run / "best.safetensors" if (run / "best.safetensors").exists() else run / "last.safetensors"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shares", type=float, nargs="+", default=[0.1, 0.3])
    parser.add_argument("--identities", type=int, default=60)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--split", type=int, default=3)
    parser.add_argument("--judge-identities", type=int, default=1000, help="0: no judge model.")
    parser.add_argument("--margins", type=float, nargs="+", default=[0.0, 5.0, 10.0, MIN_MARGIN, 20.0])
    parser.add_argument("--time-budget", type=float, default=None, help="Seconds per run (default: the recipe's).")
    parser.add_argument("--loss", default="subcenter_arcface", help="The noisy run's loss.")
    args = parser.parse_args()
    table = Table(title="facecli clean on known wrong labels, 2-core CPU")
    for column in ("wrong labels", "centres", "--min-margin", "precision", "recall", "suspects", "split found",
                   "pairs", "held-out: noisy", "cleaned"):  # fmt: skip
        table.add_column(column)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        synth(work / "faces", identities=args.identities, images=args.images, size=32, seed=5)
        pairs = min(300, args.identities * 5)
        annotate(work / "faces", out_dir=work, pairs=pairs, pairs_out=work / "pairs.txt", holdout=args.identities // 4)
        judged = judge(work, args.judge_identities) if args.judge_identities else None
        for share in args.shares:
            noisy = work / f"noisy{share}.txt"
            moved, renamed = noisy_list(work / "cls_train.txt", noisy, share, args.split)
            common = {"device": "cpu", "time_budget": args.time_budget, "loss": args.loss}
            run = work / f"run{share}"
            train(TrainOptions(data=noisy, run_dir=run, **common))
            noisy_accuracy = held_out(run, work / "pairs.txt", work / "faces")
            sources = [("run's head", run, None), ("run's embeddings", run / "last.safetensors", noisy)]
            sources += [("judge's embeddings", judged, noisy)] if judged else []
            for centres, source, data in sources:
                for margin in args.margins:
                    out = work / f"clean{share}{centres}{margin}"
                    try:
                        clean(data, source, out, EMBEDDING, min_margin=margin)
                    except FaceCliError as exc:  # most images suspects: the model is not fit to judge
                        table.add_row(f"{share:.0%}", centres, f"{margin:g}", f"refused: {str(exc)[:90]}")
                        continue
                    row = scored(out, moved, renamed)
                    cleaned = ""
                    if margin == MIN_MARGIN and centres != "run's embeddings":  # the default rule: train again
                        again = work / f"again{share}{centres}"
                        train(TrainOptions(data=out / "cls_train.txt", run_dir=again, **common))
                        cleaned = f"{held_out(again, work / 'pairs.txt', work / 'faces'):.3f}"
                    table.add_row(
                        f"{share:.0%} + {args.split} split", centres, f"{margin:g}", f"{row['precision']:.2f}",
                        f"{row['recall']:.2f}", str(row["suspects"]), f"{row['split found']} of {len(renamed)}",
                        str(row["same-person pairs"]), f"{noisy_accuracy:.3f}", cleaned,
                    )  # fmt: skip
                    print(f"{share:.0%}", centres, margin, row, cleaned, flush=True)  # as it comes
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
