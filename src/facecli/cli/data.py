"""Data commands: align photos, annotate a data set, make a synthetic one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facecli.cli.app import DATA, command
from facecli.cli.options import Force, Threads
from facecli.cli.tables import alignment_table, annotation_tables
from facecli.console import console
from facecli.errors import FaceCliError


@command("align", DATA)
def align_command(
    in_dir: Annotated[Path, typer.Argument(help="Folder of photos (any layout; sub-folders are kept).")],
    out_dir: Annotated[Path, typer.Argument(help="Folder for the aligned crops, same relative paths.")],
    size: Annotated[int, typer.Option("--size", help="Crop side in pixels (112 for ArcFace, 160 for FaceNet).")] = 160,
    margin: Annotated[
        float, typer.Option("--margin", help="facenet template: extra border, fraction of the box.")
    ] = 0.2,
    template: Annotated[
        str, typer.Option("--template", help="facenet (eye-levelled box) or arcface (5 points).")
    ] = "facenet",
    detector: Annotated[str, typer.Option("--detector", help="mtcnn, haar (OpenCV cascades) or onnx.")] = "mtcnn",
    detector_model: Annotated[
        Path | None, typer.Option("--detector-model", help="Your ONNX detector (see README: Plugging in a detector).")
    ] = None,
    min_face: Annotated[int, typer.Option("--min-face", min=12, help="Smallest face side to find, in pixels.")] = 20,
    all_faces: Annotated[
        bool, typer.Option("--all", help="Write every face (NAME_face1, ...), not only the largest.")
    ] = False,
    keep_unaligned: Annotated[
        bool, typer.Option("--keep-unaligned", help="Write a centre crop for photos with no face.")
    ] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Photos processed in parallel.")] = 2,
    force: Annotated[bool, typer.Option("--force", help="Redo photos whose output exists.")] = False,
) -> None:
    """Detect faces and five landmarks, warp to a template, write crops and align_report.csv."""
    from facecli.align.folder import AlignOptions, align_folder

    options = AlignOptions(
        size=size,
        margin=margin,
        template=template,
        detector=detector,
        detector_model=detector_model,
        min_face=min_face,
        all_faces=all_faces,
        keep_unaligned=keep_unaligned,
        workers=workers,
        force=force,
    )
    console.print(alignment_table(align_folder(in_dir, out_dir, options)))


@command("annotate", DATA)
def annotate_command(
    dataset_dir: Annotated[Path, typer.Argument(help="Image-folder dataset: one folder per identity.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for cls_train.txt and classes.txt.")] = Path("."),
    csv: Annotated[Path | None, typer.Option(help="Also write a CSV with columns path,label,identity.")] = None,
    pairs: Annotated[int, typer.Option(help="Draw this many verification pairs (half genuine).")] = 0,
    pairs_out: Annotated[Path | None, typer.Option(help="Pairs file to write (LFW pairs.txt layout).")] = None,
    holdout: Annotated[int, typer.Option(help="Keep this many identities out of training, for the pairs.")] = 0,
    folds: Annotated[int, typer.Option(min=2, help="Folds in the pairs file.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed for the hold-out and pair draws.")] = 0,
    check: Annotated[
        bool, typer.Option("--check", help="Decode every image fully (slower, finds truncation).")
    ] = False,
    relative: Annotated[bool, typer.Option("--relative", help="Write paths relative to DATASET_DIR.")] = False,
    workers: Threads = 4,
    force: Force = False,
) -> None:
    """Write cls_train.txt (id;path), classes.txt, optional CSV and pairs, and print a data report."""
    from facecli.data.annotation import annotate

    report = annotate(
        dataset_dir,
        out_dir=out,
        csv=csv,
        pairs=pairs,
        pairs_out=pairs_out,
        holdout=holdout,
        folds=folds,
        seed=seed,
        check=check,
        relative=relative,
        workers=workers,
        force=force,
    )
    for table in annotation_tables(report):
        console.print(table)
    console.print("wrote " + ", ".join(str(p) for p in report.outputs))


@command("synth", DATA)
def synth_command(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write person_NNNN/person_NNNN_NNNN.jpg into.")],
    identities: Annotated[int, typer.Option(help="Number of identities.")] = 20,
    images: Annotated[int, typer.Option(help="Images per identity.")] = 10,
    size: Annotated[int, typer.Option(help="Image side in pixels.")] = 64,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same images).")] = 0,
    workers: Threads = 4,
    force: Force = False,
) -> None:
    """Generate a synthetic face-like dataset with identity structure."""
    from facecli.data.synth import synth

    count = synth(out_dir, identities=identities, images=images, size=size, seed=seed, workers=workers, force=force)
    console.print(f"wrote {count} images of {identities} identities to {out_dir}")


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
