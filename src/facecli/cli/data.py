"""Data commands: align photos, annotate a data set, make a synthetic one, pack and unpack, clean labels."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer

from facecli.cli.app import DATA, command
from facecli.cli.defaults import Defaults, given, library_constant
from facecli.cli.options import EmbeddingOptions, Force
from facecli.cli.tables import alignment_table, annotation_tables, clean_tables
from facecli.console import console, err_console
from facecli.errors import FaceCliError

ALIGN = Defaults("align/folder", "AlignOptions")
ANNOTATE = Defaults("data/annotation", "annotate")
SYNTH = Defaults("data/synth", "synth")


@command(
    "align", DATA, renamed={"--template": "--align-template", "--margin": "--crop-margin", "--workers": "--threads"}
)
def align_command(
    in_dir: Annotated[Path, typer.Argument(help="Folder of photos (any layout; sub-folders are kept).")],
    out_dir: Annotated[Path, typer.Argument(help="Folder for the aligned crops, same relative paths.")],
    size: Annotated[
        int | None, typer.Option("--size", help=ALIGN("Crop side in pixels (112 for ArcFace, 160 for FaceNet)", "size"))
    ] = None,
    margin: Annotated[
        float | None,
        typer.Option("--crop-margin", help=ALIGN("facenet template: extra border, fraction of the box", "margin")),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option("--align-template", help=ALIGN("facenet (eye-levelled box) or arcface (5 points)", "template")),
    ] = None,
    detector: Annotated[
        str | None, typer.Option("--detector", help=ALIGN("mtcnn, haar (OpenCV cascades) or onnx", "detector"))
    ] = None,
    detector_model: Annotated[
        Path | None, typer.Option("--detector-model", help="Your ONNX detector (see docs/data.md).")
    ] = None,
    min_face: Annotated[
        int | None, typer.Option("--min-face", min=12, help=ALIGN("Smallest face side to find, in pixels", "min_face"))
    ] = None,
    all_faces: Annotated[
        bool, typer.Option("--all", help="Write every face (NAME_face1, ...), not only the largest.")
    ] = False,
    keep_unaligned: Annotated[
        bool, typer.Option("--keep-unaligned", help="Write a centre crop for photos with no face.")
    ] = False,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help=ALIGN("Photos processed in parallel", "threads"))
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Redo photos whose output exists.")] = False,
) -> None:
    """Detect faces and five landmarks, warp to a template, write crops and align_report.csv."""
    from rich import progress

    from facecli.align.folder import AlignOptions, align_folder

    options = AlignOptions(
        **given(size=size, margin=margin, template=template, detector=detector, min_face=min_face, threads=threads),
        detector_model=detector_model,
        all_faces=all_faces,
        keep_unaligned=keep_unaligned,
        force=force,
    )

    def track(jobs: list, total: int) -> Iterable:
        return progress.track(jobs, total=total, description="aligning", console=err_console, transient=True)

    console.print(alignment_table(align_folder(in_dir, out_dir, options, track)))


@command("annotate", DATA, renamed={"--pairs": "--num-pairs", "--workers": "--threads"})
def annotate_command(
    dataset_dir: Annotated[Path, typer.Argument(help="Image-folder dataset: one folder per identity.")],
    out: Annotated[
        Path | None, typer.Option("--out", help=ANNOTATE("Folder for cls_train.txt and classes.txt", "out_dir"))
    ] = None,
    csv: Annotated[Path | None, typer.Option(help="Also write a CSV with columns path,label,identity.")] = None,
    num_pairs: Annotated[
        int | None,
        typer.Option("--num-pairs", help=ANNOTATE("Draw this many verification pairs (half genuine)", "pairs")),
    ] = None,
    pairs_out: Annotated[Path | None, typer.Option(help="Pairs file to write (LFW pairs.txt layout).")] = None,
    holdout: Annotated[
        int | None, typer.Option(help=ANNOTATE("Keep this many identities out of training, for the pairs", "holdout"))
    ] = None,
    folds: Annotated[int | None, typer.Option(min=2, help=ANNOTATE("Folds in the pairs file", "folds"))] = None,
    seed: Annotated[int | None, typer.Option(help=ANNOTATE("Seed for the hold-out and pair draws", "seed"))] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Decode every image fully (slower, finds truncation).")
    ] = False,
    relative: Annotated[bool, typer.Option("--relative", help="Write paths relative to DATASET_DIR.")] = False,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help=ANNOTATE("Parallel reader threads", "threads"))
    ] = None,
    force: Force = False,
) -> None:
    """Write cls_train.txt (id;path), classes.txt, optional CSV and pairs, and print a data report."""
    from facecli.data.annotation import annotate

    report = annotate(
        dataset_dir,
        **given(out_dir=out, pairs=num_pairs, holdout=holdout, folds=folds, seed=seed, threads=threads),
        csv=csv,
        pairs_out=pairs_out,
        check=check,
        relative=relative,
        force=force,
    )
    for table in annotation_tables(report):
        console.print(table)
    console.print("wrote " + ", ".join(str(p) for p in report.outputs))


@command("synth", DATA, renamed={"--workers": "--threads"})
def synth_command(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write person_NNNN/person_NNNN_NNNN.jpg into.")],
    identities: Annotated[int | None, typer.Option(help=SYNTH("Number of identities", "identities"))] = None,
    images: Annotated[int | None, typer.Option(help=SYNTH("Images per identity", "images"))] = None,
    size: Annotated[int | None, typer.Option(help=SYNTH("Image side in pixels", "size"))] = None,
    seed: Annotated[int | None, typer.Option(help=SYNTH("Random seed (same seed, same images)", "seed"))] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", min=1, help=SYNTH("Parallel writer threads", "threads"))
    ] = None,
    force: Force = False,
) -> None:
    """Generate a synthetic face-like dataset with identity structure."""
    from facecli.data.synth import synth

    options = given(identities=identities, images=images, size=size, seed=seed, threads=threads)
    count = synth(out_dir, **options, force=force)
    console.print(f"wrote {count} images to {out_dir}")


@command("pack", DATA)
def pack_command(
    out: Annotated[Path, typer.Option("--out", help="train.rec (its .idx beside it), or my.bin with --pairs.")],
    source: Annotated[
        Path | None, typer.Argument(help="A dataset folder or training list to pack into a .rec.")
    ] = None,
    pairs: Annotated[Path | None, typer.Option("--pairs", help="A labelled pairs file to pack into a .bin.")] = None,
    root: Annotated[Path | None, typer.Option("--root", help="Image folder of the pairs or list paths.")] = None,
    force: Force = False,
) -> None:
    """Pack images into an insightface .rec + .idx, or labelled pairs into a .bin validation set."""
    from facecli.data.packing import pack_images, pack_pairs

    if (source is None) == (pairs is None):
        raise FaceCliError("pack takes a SOURCE folder or list (to a .rec), or --pairs FILE (to a .bin)")
    if pairs is not None:
        count = pack_pairs(pairs, root if root is not None else pairs.parent, out, force=force)
        console.print(f"wrote {count} pairs ({2 * count} images) to {out}")
    else:
        count = pack_images(source, out, root=root, force=force)
        console.print(f"wrote {count} images to {out} and {out.with_suffix('.idx')}")


@command("unpack", DATA)
def unpack_command(
    rec: Annotated[Path, typer.Argument(help="An insightface train.rec (its .idx beside it).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for <label>/<key>.jpg files.")],
    force: Force = False,
) -> None:
    """Unpack a .rec into a folder of identity folders."""
    from facecli.data.packing import unpack

    console.print(f"wrote {unpack(rec, out, force=force)} images to {out}")


@command("clean", DATA)
def clean_command(
    data: Annotated[
        Path | None, typer.Option("--data", help="The training set to check (default: a run folder's own).")
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option("--checkpoint", "-c", help="A run folder (its head's class centres) or any model file."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for suspects.csv, same_person.csv, cls_train.txt.")
    ] = None,
    root: Annotated[Path | None, typer.Option("--root", help="Folder a training list's paths start from.")] = None,
    max_angle: Annotated[
        float | None,
        typer.Option(
            "--max-angle",
            min=1,
            max=180,
            help="Degrees from its identity's centre past which an image is a suspect (default: "
            f"{library_constant('cleaning/suspects', 'MAX_ANGLE')}).",
        ),
    ] = None,
    min_margin: Annotated[
        float | None,
        typer.Option(
            "--min-margin",
            min=0,
            max=180,
            help="Degrees nearer another identity's centre than its own past which an image is a suspect "
            f"(default: {library_constant('cleaning/suspects', 'MIN_MARGIN')}).",
        ),
    ] = None,
    show: Annotated[bool, typer.Option("--show", help="Also write suspects.png: the worst suspects.")] = False,
    embedding: EmbeddingOptions = EmbeddingOptions(),  # noqa: B008
    force: Force = False,
) -> None:
    """Find training images that look mislabelled, and identities that look like one person under two names."""
    from facecli.cleaning import clean

    if checkpoint is None or out is None:
        raise FaceCliError("clean needs -c RUN_FOLDER or MODEL and --out FOLDER (and --data with a model file)")
    options = given(max_angle=max_angle, min_margin=min_margin)
    found = clean(data, checkpoint, out, embedding.embed_options(), root=root, show=show, force=force, **options)
    for table in clean_tables(found):
        console.print(table)
