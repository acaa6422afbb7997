"""Is the feature norm of a MagFace (or AdaFace) model a face-quality score? On identities the run never saw,
each face degraded by blur, noise, occlusion and small size at growing strength: the rank correlation of
quality with strength; then pairs of faces degraded at random strengths, scored by `facecli eval`, whose
error-versus-reject curve should fall as the lowest-quality pairs are set aside.

Usage: python benchmarks/quality.py [--losses magface adaface arcface] [--identities 60] [--images 10]
       [--folder att_faces] [--plot quality.png]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from rich.console import Console
from rich.table import Table
from scipy.stats import spearmanr
from train_recipes import copy_identities

from facecli.checkpoint import load
from facecli.data.annotation import annotate
from facecli.data.images import image_files, read_image
from facecli.data.synth import synth
from facecli.embed import EmbedOptions, embed_files
from facecli.embed.backends import flip_merged
from facecli.runtime import resolve_runtime
from facecli.training import TrainOptions, train
from facecli.verification import PairsInput, evaluate

EMBEDDING = EmbedOptions(resolve_runtime("cpu"), backend="torch")
STRENGTHS = (0, 1, 2, 3, 4)


def degraded(image: np.ndarray, kind: str, strength: int, rng: np.random.Generator) -> np.ndarray:
    """`image` (uint8 RGB) degraded by `kind` at `strength` (0: untouched, 4: the worst)."""
    height, width = image.shape[:2]
    side = min(height, width)
    if strength == 0:
        return image
    if kind == "blur":
        return cv2.GaussianBlur(image, (0, 0), sigmaX=0.5 * strength * side / 32)
    if kind == "noise":
        return np.clip(image + rng.normal(0, 12 * strength, image.shape), 0, 255).astype(np.uint8)
    if kind == "occlusion":  # a grey square over a tenth more of the face per step
        cover = int(side * np.sqrt(0.1 * strength))
        x, y = rng.integers(0, width - cover + 1), rng.integers(0, height - cover + 1)
        out = image.copy()
        out[y : y + cover, x : x + cover] = 128
        return out
    if kind == "small":  # down to 1/(1 + strength) of the side, then back up
        small = (max(4, round(width / (1 + strength))), max(4, round(height / (1 + strength))))
        return cv2.resize(cv2.resize(image, small, interpolation=cv2.INTER_AREA), (width, height))
    raise ValueError(kind)


KINDS = ("blur", "noise", "occlusion", "small")


def degraded_set(faces: list[Path], out: Path, seed: int = 0) -> pd.DataFrame:
    """Every face at every kind and strength, written under `out`: path, identity, kind, strength."""
    rng = np.random.default_rng(seed)
    rows = []
    for face in faces:
        image = read_image(face)
        for kind in KINDS:
            for strength in STRENGTHS:
                path = out / face.parent.name / f"{face.stem}_{kind}{strength}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(path), cv2.cvtColor(degraded(image, kind, strength, rng), cv2.COLOR_RGB2BGR))
                rows.append({"path": path, "path0": face, "identity": face.parent.name, "kind": kind,
                             "strength": strength})  # fmt: skip
    return pd.DataFrame(rows)


def random_pairs(table: pd.DataFrame, out: Path, count: int, seed: int = 0) -> Path:
    """`count` labelled pairs, half genuine, each face at a random kind and strength (a CSV `eval` reads)."""
    rng = np.random.default_rng(seed)
    by_identity = {name: group["path"].tolist() for name, group in table.groupby("identity")}
    names = sorted(by_identity)
    rows = []
    for n in range(count):
        same = n % 2 == 0
        a = rng.choice(names)
        b = a if same else rng.choice([name for name in names if name != a])
        first, second = rng.choice(by_identity[a]), rng.choice(by_identity[b])
        while Path(first).stem.rsplit("_", 1)[0] == Path(second).stem.rsplit("_", 1)[0]:
            second = rng.choice(by_identity[b])  # two different photos, not one photo degraded twice
        rows.append((str(first), str(second), int(same)))
    pd.DataFrame(rows, columns=["image1", "image2", "label"]).to_csv(out, index=False)
    return out


def qualities(model: Path, table: pd.DataFrame) -> np.ndarray:
    """The model's quality of each face of `table`; for a model without a score, its plain feature norm."""
    quality = embed_files(model, [Path(p) for p in table["path"]], EMBEDDING).quality
    if quality is None:
        net = load(model).eval()
        batch = net.preprocess([read_image(Path(p)) for p in table["path"]])
        with torch.inference_mode():
            quality = flip_merged(net.features(batch).numpy(), len(batch), False)[1]
    return quality


def spread(quality: np.ndarray, table: pd.DataFrame, strength: int) -> str:
    """The 10th, 50th and 90th percentiles of quality at one strength."""
    at = quality[(table["strength"] == strength).to_numpy()]
    return "/".join(f"{q:.0f}" for q in np.percentile(at, [10, 50, 90]))


def correlations(quality: np.ndarray, table: pd.DataFrame) -> dict[str, float]:
    """Spearman correlation of quality with degradation strength, per kind and for all faces pooled, and the
    mean over faces of each face's own (its five strengths of one kind): negated, so that a score which falls
    as faces get worse scores positive."""
    found = {"all": -spearmanr(quality, table["strength"]).statistic}
    per_face = [
        -spearmanr(quality[group.index], group["strength"]).statistic for _, group in table.groupby(["path0", "kind"])
    ]
    found["per face"] = float(np.nanmean(per_face))
    for kind in KINDS:
        mask = (table["kind"] == kind).to_numpy()
        found[kind] = -spearmanr(quality[mask], table["strength"][mask]).statistic
    return found


def _faces(out: Path, args: argparse.Namespace) -> int:
    """The faces to train and test on, written under `out` (a copy of --folder, else synthetic): identities."""
    if args.folder is None:
        synth(out, identities=args.identities, images=args.images, size=32, seed=5)
        return args.identities
    return copy_identities(args.folder, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", nargs="+", default=["magface", "adaface", "arcface"])
    parser.add_argument("--identities", type=int, default=60)
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--folder", type=Path, help="Real faces instead: one subfolder per identity (att_faces).")
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--time-budget", type=float, default=None, help="Seconds per run (default: the recipe's).")
    parser.add_argument("--aug", default=None, help="Training augmentation (default: the recipe's).")
    parser.add_argument("--plot", type=Path, default=None, help="eval's figure (with the curve), per loss.")
    args = parser.parse_args()
    spearman = Table(title="quality against degradation strength: -Spearman (1: falls in step), held-out faces")
    curve = Table(title="error at a fixed threshold with the lowest-quality pairs rejected (eval's curve)")
    for column in ("loss", "held-out accuracy", *KINDS, "all", "per face", "quality p10/50/90, clean", "strength 4"):
        spearman.add_column(column)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        identities = _faces(work / "faces", args)
        pairs = min(300, identities * 2)  # as many as the held-out identities allow, up to 300
        annotate(work / "faces", out_dir=work, pairs=pairs, pairs_out=work / "pairs.txt", holdout=identities // 4)
        trained = {line.split(";", 1)[1] for line in (work / "classes.txt").read_text().splitlines() if ";" in line}
        faces = [f for f in image_files(work / "faces") if f.parent.name not in trained]  # never trained on
        table = degraded_set(faces, work / "degraded")
        pairs = random_pairs(table, work / "degraded_pairs.csv", args.pairs)
        for loss in args.losses:
            run = work / f"run_{loss}"
            train(TrainOptions(data=work / "cls_train.txt", run_dir=run, device="cpu", loss=loss,
                               time_budget=args.time_budget, aug=args.aug))  # fmt: skip
            model = run / "best.safetensors" if (run / "best.safetensors").exists() else run / "last.safetensors"
            clean = evaluate(checkpoint=model, pairs=PairsInput(work / "pairs.txt", root=work / "faces"),
                             embedding=EMBEDDING).accuracy_mean  # fmt: skip
            quality = qualities(model, table)
            found = correlations(quality, table)
            spearman.add_row(loss, f"{clean:.3f}", *[f"{found[k]:.2f}" for k in (*KINDS, "all", "per face")],
                             spread(quality, table, STRENGTHS[0]), spread(quality, table, STRENGTHS[-1]))  # fmt: skip
            plot = None if args.plot is None else args.plot.with_name(f"{args.plot.stem}_{loss}{args.plot.suffix}")
            report = evaluate(checkpoint=model, pairs=PairsInput(pairs, root=Path("/")), embedding=EMBEDDING,
                              plot=plot, force=True)  # fmt: skip
            if report.reject_curve is None:
                continue
            if not curve.columns:
                for column in ("loss", *[f"{share:.0%}" for share in report.reject_curve.rejected]):
                    curve.add_column(column)
            curve.add_row(loss, *[f"{error:.3f}" for error in report.reject_curve.error])
    console = Console(width=160)
    console.print(spearman)
    console.print(curve)


if __name__ == "__main__":
    main()
