"""Draw verification pairs from identities and write them in the LFW pairs.txt layout."""

from __future__ import annotations

import functools
import math
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from facecli.errors import FaceCliError
from facecli.fileio import write_csv_atomic, write_text_atomic


@dataclass(frozen=True)
class Pair:
    """Two images and whether they show the same identity."""

    identity_a: str
    image_a: Path
    identity_b: str
    image_b: Path

    @property
    def genuine(self) -> bool:
        return self.identity_a == self.identity_b


def _fold_groups(identities: list[str], folds: int, rng: random.Random) -> list[list[str]]:
    """Identity-disjoint folds as in LFW when there are enough identities, else all in every fold."""
    shuffled = identities[:]
    rng.shuffle(shuffled)
    if len(shuffled) >= 2 * folds:
        return [shuffled[k::folds] for k in range(folds)]
    return [shuffled] * folds


def _draw(n: int, draw_one: Callable[[], Pair], seen: set, what: str, fold: int) -> list[Pair]:
    pairs: list[Pair] = []
    for _ in range(200 * n):
        if len(pairs) == n:
            break
        pair = draw_one()
        key = frozenset((pair.image_a, pair.image_b))
        if pair.image_a != pair.image_b and key not in seen:
            seen.add(key)
            pairs.append(pair)
    if len(pairs) < n:
        raise FaceCliError(
            f"cannot draw {n} distinct {what} pairs for fold {fold + 1} from these identities; "
            "ask for fewer --num-pairs or hold out more identities"
        )
    return pairs


def _genuine(rng: random.Random, usable: dict[str, list[Path]], names: list[str]) -> Pair:
    name = rng.choice(names)
    a, b = sorted(rng.sample(usable[name], 2))
    return Pair(name, a, name, b)


def _impostor(rng: random.Random, usable: dict[str, list[Path]], names: list[str]) -> Pair:
    name_a, name_b = sorted(rng.sample(names, 2))
    return Pair(name_a, rng.choice(usable[name_a]), name_b, rng.choice(usable[name_b]))


def make_pairs(images: dict[str, list[Path]], total: int, folds: int = 10, seed: int = 0) -> list[list[Pair]]:
    """`folds` folds, each half genuine then half impostor, `total` pairs in all, no pair twice."""
    per_half = total // (2 * folds)
    if per_half < 1:
        raise FaceCliError(
            f"--num-pairs {total} is too few for {folds} folds of genuine and impostor pairs "
            f"(need at least {2 * folds})"
        )
    usable = {name: files for name, files in images.items() if files}
    if len([n for n, f in usable.items() if len(f) >= 2]) < 1 or len(usable) < 2:
        raise FaceCliError("pairs need at least one identity with 2 images and at least 2 identities")
    genuine_there = sum(math.comb(len(files), 2) for files in usable.values())
    if per_half * folds > genuine_there:  # refused at once, not after minutes of drawing
        raise FaceCliError(
            f"--num-pairs {total} needs {per_half * folds} distinct genuine pairs; these images make only "
            f"{genuine_there}: ask for at most {2 * folds * (genuine_there // folds)} pairs"
        )
    rng = random.Random(seed)
    seen: set = set()
    result = []
    for fold, group in enumerate(_fold_groups(sorted(usable), folds, rng)):
        multi = [name for name in group if len(usable[name]) >= 2]
        if not multi or len(group) < 2:
            raise FaceCliError(f"fold {fold + 1} has too few identities for pairs; hold out more identities")
        if per_half > sum(math.comb(len(usable[name]), 2) for name in multi):
            raise FaceCliError(
                f"cannot draw {per_half} distinct genuine pairs for fold {fold + 1} from its identities; "
                "ask for fewer --num-pairs or hold out more identities"
            )

        genuine = functools.partial(_genuine, rng, usable, multi)
        impostor = functools.partial(_impostor, rng, usable, group)
        result.append(
            _draw(per_half, genuine, seen, "genuine", fold) + _draw(per_half, impostor, seen, "impostor", fold)
        )
    return result


def _lfw_number(identity: str, image: Path) -> int | None:
    match = re.fullmatch(re.escape(identity) + r"_(\d{4})\.jpg", image.name)
    return int(match.group(1)) if match else None


def write_pairs(path: str | os.PathLike[str], folds: list[list[Pair]], root: Path) -> str:
    """Write LFW `pairs.txt` lines when every image is named `name_NNNN.jpg`, else `path1 path2 label`; where
    a name holds whitespace, which both split on, a CSV of imageA, imageB, label and fold (quoted as needed).

    Returns the format written: "lfw", "paths" or "csv".
    """
    pairs = [p for fold in folds for p in fold]
    relative = [(p.image_a.relative_to(root).as_posix(), p.image_b.relative_to(root).as_posix()) for p in pairs]
    if any(ch.isspace() for a, b in relative for ch in a + b):  # LFW and path lines split on whitespace
        fold_of = [f for f, fold in enumerate(folds) for _ in fold]
        rows = [(a, b, int(p.genuine), f) for (a, b), p, f in zip(relative, pairs, fold_of, strict=True)]
        write_csv_atomic(path, pd.DataFrame(rows, columns=["imageA", "imageB", "label", "fold"]))
        return "csv"
    lfw = all(_lfw_number(p.identity_a, p.image_a) and _lfw_number(p.identity_b, p.image_b) for p in pairs)
    if lfw:
        lines = [f"{len(folds)}\t{len(folds[0]) // 2}"]
        for p in pairs:
            a, b = _lfw_number(p.identity_a, p.image_a), _lfw_number(p.identity_b, p.image_b)
            lines.append(f"{p.identity_a}\t{a}\t{b}" if p.genuine else f"{p.identity_a}\t{a}\t{p.identity_b}\t{b}")
    else:
        lines = [f"{a} {b} {int(p.genuine)}" for (a, b), p in zip(relative, pairs, strict=True)]
    write_text_atomic(path, "\n".join(lines) + "\n")
    return "lfw" if lfw else "paths"
