"""The recipe table: held-out verification accuracy of `facecli train` with no recipe flags (the recipe
chosen from the data), of the seed repos' combinations with the recipe filling the rest, and of hand recipes,
on data sets of different kinds and sizes, CPU minutes each.

Each set trains on some identities and is verified on LFW-format pairs of others (10-fold), which training
never sees: the run validates on identities it holds back itself, as a user's run does, and the model it
keeps (best.safetensors, else last.safetensors) is then evaluated on the pairs. Baselines score the pairs
without training: the cosine of raw pixels and the distance of mean colours. Usage:
python benchmarks/train_recipes.py [--sets synth30 digits ...] [--recipes auto "auto @48" ...] [--log runs.jsonl]
python benchmarks/train_recipes.py --folder att_faces  # a set of your own: one subfolder per identity
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console
from rich.table import Table

from facecli.data.annotation import annotate
from facecli.data.images import read_image
from facecli.data.pairs import read_pairs, resolve_images
from facecli.data.synth import synth
from facecli.embed import EmbedOptions
from facecli.runtime import resolve_runtime
from facecli.training import TrainOptions, train
from facecli.verification import PairsInput, evaluate
from facecli.verification.metrics import verification_report

# name: (identities, images each, side in px, held-out identities, pairs, grey, pose)
SYNTH_SETS = {
    "synth30": (30, 10, 32, 10, 300, False, False),
    "synth300": (300, 8, 32, 30, 600, False, False),
    "synth1000": (1000, 12, 32, 50, 600, False, False),
    "grey24x4": (80, 4, 24, 30, 300, True, False),  # few images per identity, low resolution, greyscale
    "grey96x10": (40, 10, 96, 14, 300, True, False),  # like the real set: 40 people x 10 grey photos
    "few3": (200, 3, 32, 30, 160, False, False),  # three images per identity (3 genuine pairs each)
    "few3x400": (400, 3, 32, 40, 240, False, False),  # the same, twice the identities
    "few5": (300, 5, 32, 30, 300, False, False),  # five images per identity, between few3 and synth300's 8
    "many20": (300, 20, 32, 30, 600, False, False),  # past the 12 per identity where triplet was last measured
    "low16": (100, 8, 16, 20, 300, False, False),  # 16 px faces
    "pose64": (60, 10, 64, 15, 300, False, True),  # head turns and tilts beyond synth's own
}
SETS = [*SYNTH_SETS, "digits"]
COMMON = {"backbone": "timm/resnet10t", "lr": 2e-3, "warmup_epochs": 0.5}
RECIPES = {
    "auto": {},  # no recipe flags: what a new user gets
    # the seed repos' combinations, the recipe filling the rest
    "triplet + mobilenet": {"loss": "triplet", "backbone": "mobilenet"},  # the FaceNet ports
    "arcface + iresnet18": {"loss": "arcface", "backbone": "iresnet18"},  # the ArcFace repo's resnet18
    "contrastive + vgg16": {"loss": "contrastive", "backbone": "vgg16"},  # the siamese repos
    # the newer margin heads (issue 34), the recipe filling the rest; "s32": with ArcFace's measured s and m
    "adaface": {"loss": "adaface"},
    "subcenter_arcface": {"loss": "subcenter_arcface"},
    "magface": {"loss": "magface"},
    "curricularface": {"loss": "curricularface"},
    "adaface s32": {"loss": "adaface", "scale": 32.0},
    "subcenter_arcface s32 m0.3": {"loss": "subcenter_arcface", "scale": 32.0, "margin": 0.3},
    "magface s32": {"loss": "magface", "scale": 32.0},
    "curricularface s32 m0.3": {"loss": "curricularface", "scale": 32.0, "margin": 0.3},
    "auto, strong aug": {"aug": "strong"},  # the recipe with only the augmentation forced
    "triplet + mobilenet, strong aug": {"loss": "triplet", "backbone": "mobilenet", "aug": "strong"},
    "auto, all mining": {"mining": "all"},  # the recipe with every violating triplet instead of batch-hard
    "triplet, all mining": {"loss": "triplet", "mining": "all"},  # the same where the recipe would pick ArcFace
    "auto, no early stop": {"patience": 10_000},  # the full planned length, the best validation kept
    "auto, nothing held back": {"val_holdout": 0},  # every identity trains; the last model is kept
    "auto, light aug": {"aug": "light"},
    "auto, 60 epochs": {"epochs": 60},  # the "--epochs 60" on its real set
    "auto, seed 1": {"seed": 1},  # the same run with another seed: how far one run spreads
    "old defaults": {"loss": "arcface", "backbone": "mobilenet", "img_size": 160, "epochs": 10, "lr": 1e-3,
                     "warmup_epochs": 0.0, "batch_size": 64, "aug": "light", "scale": 64.0, "margin": 0.5},
    "triplet 10 ep": {**COMMON, "loss": "triplet", "epochs": 10},
    "triplet 40 ep": {**COMMON, "loss": "triplet", "epochs": 40},
    "triplet 40 ep strong aug": {**COMMON, "loss": "triplet", "epochs": 40, "aug": "strong"},
    "arcface s32 m0.3 10 ep": {**COMMON, "loss": "arcface", "scale": 32.0, "margin": 0.3, "epochs": 10},
    "arcface s32 m0.3 40 ep": {**COMMON, "loss": "arcface", "scale": 32.0, "margin": 0.3, "epochs": 40},
}  # fmt: skip
FOLDER = "folder:"  # a set name FOLDER + path: the user's own folder tree (--folder)


def recipe_options(name: str) -> dict:
    """A recipe's options; "NAME @N" is recipe NAME with the input size fixed at N px."""
    base, _, size = name.partition(" @")
    if base not in RECIPES or (size and not size.isdigit()):
        raise argparse.ArgumentTypeError(f"{name!r}: a recipe of {list(RECIPES)}, optionally followed by ' @PX'")
    return {**RECIPES[base], **({"img_size": int(size)} if size else {})}


def copy_identities(folder: Path, out: Path) -> int:
    """A copy under `out` of each identity's subfolder of `folder` (hidden files left out): how many."""
    people = sorted(p for p in folder.iterdir() if p.is_dir())
    for person in people:
        shutil.copytree(person, out / person.name, ignore=shutil.ignore_patterns(".*"))
    return len(people)


def make_set(name: str, work: Path) -> tuple[Path, Path]:
    """The training folder and the held-out pairs file of a set."""
    faces = work / "faces"
    if name.startswith(FOLDER):  # a folder tree of the user's: about a third held out (14 of 40, as grey96x10)
        holdout = round(copy_identities(Path(name.removeprefix(FOLDER)), faces) * 0.35)
        annotate(faces, out_dir=work, pairs=300, pairs_out=work / "pairs.txt", holdout=holdout, seed=0)
        return work / "cls_train.txt", work / "pairs.txt"
    if name == "digits":  # 10 classes of 8x8 grey digits (scikit-learn's own copy): 0-6 train, 7-9 held out
        from sklearn.datasets import load_digits

        digits = load_digits()
        for n, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
            folder = faces / f"digit{label}"
            folder.mkdir(parents=True, exist_ok=True)
            pixels = cv2.resize((image * 255 / 16).astype(np.uint8), (32, 32), interpolation=cv2.INTER_NEAREST)
            cv2.imwrite(str(folder / f"digit{label}_{n:04d}.png"), pixels)
        annotate(faces, out_dir=work, pairs=600, pairs_out=work / "pairs.txt", holdout=3, seed=0)
        return work / "cls_train.txt", work / "pairs.txt"
    identities, images, size, holdout, pairs, grey, pose = SYNTH_SETS[name]
    synth(faces, identities=identities, images=images, size=max(size, 32), seed=1)
    rng = np.random.default_rng(2)
    for path in faces.rglob("*.jpg"):
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
        if pose:
            image = _turned(image, rng)
        cv2.imwrite(str(path), cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA))
    annotate(faces, out_dir=work, pairs=pairs, pairs_out=work / "pairs.txt", holdout=holdout, seed=0)
    return work / "cls_train.txt", work / "pairs.txt"


def _turned(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A head turn (one side of the face narrowed, up to 30%) and a tilt (up to 20 degrees)."""
    h, w = image.shape[:2]
    turn = rng.uniform(-0.3, 0.3) * w / 2
    near, far = [0, 0, w, 0, w, h, 0, h], [0, turn, w, -turn, w, h + turn, 0, h - turn]
    if turn < 0:
        far = [0, -turn, w, turn, w, h - turn, 0, h + turn]
    warp = cv2.getPerspectiveTransform(np.float32(near).reshape(4, 2), np.float32(far).reshape(4, 2))
    tilt = np.vstack([cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-20, 20), 1.0), [0, 0, 1]])
    return cv2.warpPerspective(image, tilt @ warp, (w, h), borderMode=cv2.BORDER_REFLECT_101)


def baselines(pairs_file: Path, root: Path) -> dict[str, float]:
    """10-fold accuracy of raw-pixel cosine and mean-colour distance, no training."""
    pairs = read_pairs(pairs_file)
    files = resolve_images(pairs, root)
    images = {name: cv2.resize(read_image(path), (32, 32)).astype(np.float32) for name, path in files.items()}
    flat = {k: v.ravel() / np.linalg.norm(v.ravel()) for k, v in images.items()}
    colour = {k: v.reshape(-1, 3).mean(0) for k, v in images.items()}
    pixel = np.array([flat[a] @ flat[b] for a, b in zip(pairs.left, pairs.right, strict=True)])
    mean = -np.array([np.linalg.norm(colour[a] - colour[b]) for a, b in zip(pairs.left, pairs.right, strict=True)])
    return {
        "raw pixels (cosine)": verification_report(pixel, pairs.labels, "cosine", pairs.folds).accuracy_mean,
        "mean colour": verification_report(mean, pairs.labels, "euclidean", pairs.folds).accuracy_mean,
    }


def run(set_name: str, recipe: str, work: Path, train_list: Path, pairs: Path) -> dict:
    run_dir = work / recipe.replace(" ", "_").replace("+", "").replace("@", "")
    options = TrainOptions(data=train_list, run_dir=run_dir, device="cpu", **recipe_options(recipe))
    started = time.perf_counter()
    result = train(options)
    minutes = (time.perf_counter() - started) / 60
    chosen = json.loads((options.run_dir / "config.json").read_text())
    kept = run_dir / "best.safetensors"
    kept = kept if kept.exists() else run_dir / "last.safetensors"
    embedding = EmbedOptions(resolve_runtime("cpu"), backend="torch")
    report = evaluate(checkpoint=kept, pairs=PairsInput(pairs, root=work / "faces"), embedding=embedding)
    return {
        "set": set_name, "recipe": recipe, "accuracy": report.accuracy_mean, "auc": report.auc,
        "kept": kept.name, "epochs": result.epochs_done, "steps": result.steps, "minutes": minutes,
        "chosen": {k: v["value"] for k, v in (chosen.get("recipe") or {}).items() if v["by"] != "you"},
    }  # fmt: skip


def _recipe_name(name: str) -> str:
    recipe_options(name)  # refuses an unknown one
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", choices=SETS, help="Generated sets (default: all, unless --folder).")
    parser.add_argument(
        "--folder", type=Path, help="A real set of yours, one subfolder per identity (e.g. AT&T/ORL's att_faces)."
    )
    parser.add_argument(
        "--recipes", nargs="+", default=list(RECIPES)[:4], type=_recipe_name, help="Names of RECIPES, or 'NAME @PX'."
    )
    parser.add_argument("--log", type=Path, help="Append each result as a JSON line here as it comes.")
    args = parser.parse_args()
    sets = args.sets or ([] if args.folder else SETS)
    rows = []
    for set_name in sets + ([f"{FOLDER}{args.folder}"] if args.folder else []):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            train_list, pairs = make_set(set_name, work)
            found = [{"set": set_name, "recipe": k, "accuracy": v} for k, v in baselines(pairs, work / "faces").items()]
            found += [run(set_name, recipe, work, train_list, pairs) for recipe in args.recipes]
            for row in found:
                rows.append(row)
                if args.log:
                    with args.log.open("a") as f:
                        f.write(json.dumps(row) + "\n")
    table = Table(title="held-out 10-fold accuracy of the model a run keeps, 2-core CPU")
    for column in ("set", "recipe", "accuracy", "AUC", "epochs", "minutes", "the recipe chose"):
        table.add_column(column, justify="left" if column in ("set", "recipe", "the recipe chose") else "right")
    for r in rows:
        table.add_row(
            r["set"], r["recipe"], f"{r['accuracy']:.3f}", f"{r['auc']:.3f}" if "auc" in r else "",
            str(r.get("epochs", "")), f"{r['minutes']:.1f}" if "minutes" in r else "",
            ", ".join(f"{k} {v}" for k, v in r.get("chosen", {}).items()),
        )  # fmt: skip
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
