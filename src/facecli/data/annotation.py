"""`facecli annotate`: an image-folder dataset to cls_train.txt, classes.txt, CSV and pairs, with a report."""

from __future__ import annotations

import os
import random
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from facecli.data.pairs_writer import make_pairs, write_pairs
from facecli.data.scan import DatasetScan, scan_dataset
from facecli.errors import FaceCliError
from facecli.fileio import atomic_path, check_writable, write_text_atomic


@dataclass
class AnnotationReport:
    """What annotate found and wrote."""

    scan: DatasetScan
    train_identities: list[str]
    holdout: list[str] = field(default_factory=list)
    pairs_format: str | None = None
    pairs_count: int = 0
    outputs: list[Path] = field(default_factory=list)

    @property
    def images_per_identity(self) -> tuple[int, float, int]:
        counts = [len(files) for files in self.scan.images.values()] or [0]
        return min(counts), statistics.median(counts), max(counts)

    @property
    def few_images(self) -> list[str]:
        """Identities with fewer than 2 usable images (no positives for triplets)."""
        return [name for name, files in self.scan.images.items() if len(files) < 2]


def _choose_holdout(scan: DatasetScan, count: int, seed: int) -> list[str]:
    eligible = [name for name, files in scan.images.items() if len(files) >= 2]
    if count > len(eligible) - 1:
        raise FaceCliError(
            f"--holdout {count} needs that many identities with 2+ images and one left to train on; "
            f"{len(eligible)} have 2+ images"
        )
    return sorted(random.Random(seed).sample(eligible, count))


def annotate(
    dataset_dir: str | os.PathLike[str],
    *,
    out_dir: str | os.PathLike[str] = ".",
    csv: str | os.PathLike[str] | None = None,
    pairs: int = 0,
    pairs_out: str | os.PathLike[str] | None = None,
    holdout: int = 0,
    folds: int = 10,
    seed: int = 0,
    check: bool = False,
    relative: bool = False,
    threads: int = 4,
    force: bool = False,
) -> AnnotationReport:
    """Scan `dataset_dir` and write cls_train.txt (`id;path`), classes.txt and optional CSV and pairs."""
    out = Path(out_dir)
    cls_train, classes = out / "cls_train.txt", out / "classes.txt"
    if (pairs or holdout) and pairs_out is None:
        raise FaceCliError("--num-pairs and --holdout need --pairs-out FILE for the pairs file")
    if pairs_out is not None and not pairs:
        raise FaceCliError("--pairs-out needs --num-pairs N (the number of pairs to draw)")
    check_writable(cls_train, classes, csv, pairs_out, force=force, inputs=(dataset_dir,))

    scan = scan_dataset(dataset_dir, check=check, threads=threads)
    root = scan.root.resolve()
    held = _choose_holdout(scan, holdout, seed) if holdout else []
    train_ids = [name for name in scan.identities if name not in held]
    report = AnnotationReport(scan=scan, train_identities=train_ids, holdout=held)
    if not any(scan.images[name] for name in train_ids):
        raise FaceCliError(f"{scan.root}: no usable images to annotate")
    drawn = None  # drawn before any file is written: too many pairs or folds is refused with nothing written
    if pairs:
        source = {name: scan.images[name] for name in (held or scan.identities)}
        drawn = make_pairs(source, pairs, folds=folds, seed=seed)

    rows = []
    for label, name in enumerate(train_ids):
        for file in scan.images[name]:
            absolute = root / name / file.name
            rows.append((label, (absolute.relative_to(root) if relative else absolute).as_posix(), name))
    write_text_atomic(cls_train, "".join(f"{label};{path}\n" for label, path, _ in rows))
    write_text_atomic(classes, "".join(f"{label};{name}\n" for label, name in enumerate(train_ids)))
    report.outputs += [cls_train, classes]
    if csv is not None:
        with atomic_path(csv) as tmp:
            pd.DataFrame(rows, columns=["label", "path", "identity"])[["path", "label", "identity"]].to_csv(
                tmp, index=False
            )
        report.outputs.append(Path(csv))
    if drawn is not None:
        report.pairs_format = write_pairs(pairs_out, drawn, scan.root)  # type: ignore[arg-type]
        report.pairs_count = sum(len(f) for f in drawn)
        report.outputs.append(Path(pairs_out))  # type: ignore[arg-type]
    return report
