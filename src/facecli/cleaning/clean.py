"""`facecli clean`: the training images that look mislabelled and the identities that look like one person,
from a model's embeddings of the training set: suspects.csv, same_person.csv and a cleaned cls_train.txt."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from facecli.cleaning.centres import embedding_centres, head_centres
from facecli.cleaning.suspects import MAX_ANGLE, MIN_MARGIN, Suspects, find_suspects
from facecli.data.training_set import TrainingSet, read_training_set
from facecli.embed.files import EmbedOptions, embed_files
from facecli.errors import FaceCliError
from facecli.fileio import check_writable, read_text, write_csv_atomic, write_text_atomic

MOST_SUSPECT = 0.5  # past this share of suspects the centres mean nothing: the model is not fit to judge
OUTPUTS = ("suspects.csv", "same_person.csv", "cls_train.txt", "classes.txt")


@dataclass
class CleanReport:
    """What `clean` found and wrote."""

    images: int
    identities: int
    suspects: int
    same_person: list[tuple[str, str, float]]
    centres: str  # where the identities' centres came from
    out_dir: Path
    worst: list[tuple[str, str, float, str]] = field(default_factory=list)  # (path, identity, angle, nearest)


def _run_head(run: Path, data: TrainingSet) -> tuple[np.ndarray, list[str]] | None:
    """The class centres a run's margin head learned (C*K x E) and the identities they are of, None for a loss
    without a head; the run must have trained on identities of the data (it may have held some back)."""
    from facecli.training.resume_file import load_training_state
    from facecli.training.run_folder import STATE_FILE

    classes = [line.split(";", 1)[1] for line in read_text(run / "classes.txt").splitlines() if ";" in line]
    unknown = sorted(set(classes) - set(data.classes))
    if unknown:
        raise FaceCliError(
            f"{run}: trained on {len(unknown)} identities that {data.source} does not hold (e.g. {unknown[0]}); "
            "give the run's own training list, or a model file (-c run/last.safetensors) to use embeddings alone"
        )
    weight = load_training_state(run / STATE_FILE)["loss"].get("head.weight")
    return None if weight is None else (weight.float().numpy(), classes)


def _model_and_head(checkpoint: Path, data: TrainingSet) -> tuple[Path, tuple[np.ndarray, list[str]] | None]:
    """A run folder: its last model and its head's centres; a model file: itself, no head."""
    from facecli.training.run_folder import LAST_FILE

    if checkpoint.is_dir():
        if not (checkpoint / LAST_FILE).is_file():
            raise FaceCliError(f"{checkpoint}: not a facecli run folder (no {LAST_FILE})")
        return checkpoint / LAST_FILE, _run_head(checkpoint, data)
    return checkpoint, None


def _run_data(checkpoint: Path) -> tuple[Path, Path | None]:
    """The training list (and root) a run folder was trained on."""
    from facecli.training.options import load_options

    if not checkpoint.is_dir():
        raise FaceCliError(
            f"{checkpoint}: a model file holds no class centres and no training list; give --data (the training "
            "set to check), or a run folder"
        )
    options = load_options(checkpoint / "config.json")
    return options.data, options.root


def clean(
    data: Path | None,
    checkpoint: Path,
    out_dir: Path,
    embedding: EmbedOptions,
    root: Path | None = None,
    max_angle: float = MAX_ANGLE,
    min_margin: float = MIN_MARGIN,
    show: bool = False,
    force: bool = False,
) -> CleanReport:
    """Embed the training set (`data`; None: the run's own) with `checkpoint` (a model file, or a run folder
    whose head's class centres are used), find the suspects and same-person pairs, and write them with a
    cleaned list to `out_dir` (with `show`, also suspects.png: the worst suspects)."""
    if data is None:
        data, root = _run_data(Path(checkpoint))
    outputs = [out_dir / name for name in (*OUTPUTS, *(["suspects.png"] if show else []))]
    check_writable(*outputs, force=force, inputs=(data, checkpoint))
    found = read_training_set(data, root)
    if found.records is not None:
        raise FaceCliError(f"{data}: clean reads image files; unpack the .rec first (facecli unpack)")
    model, head = _model_and_head(Path(checkpoint), found)
    embeddings = embed_files(model, found.paths, embedding).vectors
    centres, how = _centres(head, embeddings, found)
    suspects = find_suspects(embeddings, found.labels, centres, max_angle, min_margin)
    if suspects.suspect.mean() > MOST_SUSPECT:
        raise FaceCliError(
            f"{checkpoint}: {int(suspects.suspect.sum())} of {len(found.paths)} images would be suspects: the model "
            "does not tell these identities apart well enough to judge their labels (train it longer, or give a "
            "model trained on this data); nothing written"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    order = suspects.worst_first()
    _write(found, suspects, order, out_dir)
    worst = [
        (str(found.paths[i]), found.classes[found.labels[i]], float(suspects.angles[i]),
         found.classes[suspects.nearest_other[i]])
        for i in order
    ]  # fmt: skip
    pairs = [(found.classes[a], found.classes[b], angle) for a, b, angle in suspects.same_person]
    report = CleanReport(len(found.paths), found.num_classes, int(suspects.suspect.sum()), pairs, how, out_dir, worst)
    if show:
        _show_suspects(report, out_dir / "suspects.png")
    return report


def _centres(
    head: tuple[np.ndarray, list[str]] | None, embeddings: np.ndarray, found: TrainingSet
) -> tuple[np.ndarray, str]:
    """Each identity's dominant centre, and where it came from: the run's head for the identities it trained
    on, the embeddings for the rest (those it held back to validate on, or all without a head)."""
    centres = embedding_centres(embeddings, found.labels, found.num_classes)
    if head is None:
        return centres, "each identity's embeddings"
    weight, run_classes = head
    label_of = {name: label for label, name in enumerate(found.classes)}
    trained = np.array([label_of[name] for name in run_classes])
    run_label = np.full(found.num_classes, -1)
    run_label[trained] = np.arange(len(trained))
    mine = run_label[found.labels] >= 0
    centres[trained] = head_centres(weight, embeddings[mine], run_label[found.labels[mine]], len(trained))
    how = f"the run's head ({len(weight) // len(trained)} centre(s) per identity: the dominant one)"
    held = found.num_classes - len(trained)
    return centres, how + (f"; the {held} it held back: their embeddings" if held else "")


def _show_suspects(report: CleanReport, path: Path, count: int = 24) -> None:
    """A grid of the `count` worst suspects, each captioned with its label, its nearest other identity and
    its angle, for a person to decide."""
    from facecli.data.images import read_image
    from facecli.plots import suspects_grid

    worst = report.worst[:count]
    images = [read_image(p) for p, *_ in worst]
    captions = [f"{identity} ({angle:.0f} deg)\nnearer {nearest}" for _, identity, angle, nearest in worst]
    suspects_grid(images, captions, path)


def _write(found: TrainingSet, suspects: Suspects, order: np.ndarray, out_dir: Path) -> None:
    names = found.classes
    table = pd.DataFrame(
        {
            "path": [str(p) for p in found.paths],
            "identity": [names[label] for label in found.labels],
            "angle": suspects.angles.round(2),
            "nearest_other": [names[label] for label in suspects.nearest_other],
            "other_angle": suspects.other_angles.round(2),
        }
    )
    table = table.iloc[order]  # the suspects, most telling first
    write_csv_atomic(out_dir / "suspects.csv", table)
    pairs = pd.DataFrame(
        [(names[a], names[b], round(angle, 2)) for a, b, angle in suspects.same_person],
        columns=["identity", "other_identity", "angle"],
    )
    write_csv_atomic(out_dir / "same_person.csv", pairs)
    numeric = all(name.isdigit() for name in names)
    ids = names if numeric else [str(n) for n in range(len(names))]
    kept = [f"{ids[label]};{path.resolve()}\n" for path, label, bad in zip(found.paths, found.labels, suspects.suspect,
                                                                              strict=True) if not bad]  # fmt: skip
    write_text_atomic(out_dir / "cls_train.txt", "".join(kept))
    write_text_atomic(out_dir / "classes.txt", "".join(f"{i};{name}\n" for i, name in zip(ids, names, strict=True)))
