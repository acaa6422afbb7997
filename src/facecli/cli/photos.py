"""Photos commands: compare two photos (or folders), write embeddings of a folder or list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from facecli.cli.app import PHOTOS, command
from facecli.cli.defaults import Defaults, given
from facecli.cli.options import EmbeddingOptions, Force, MinQuality, ModelFile, model_or_newest
from facecli.console import console


@command("compare", PHOTOS)
def compare_command(
    a: Annotated[Path, typer.Argument(help="An image, or a folder of images.")],
    b: Annotated[Path, typer.Argument(help="An image, or a folder of images.")],
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Cosine above which two faces are the same person.")
    ] = None,
    all_faces: Annotated[
        bool, typer.Option("--all-faces", help="Compare every face of each photo (best match), not the largest.")
    ] = False,
    show: Annotated[Path | None, typer.Option("--show", help="Draw both faces with the score (a .png).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    min_quality: MinQuality = None,
    embedding: EmbeddingOptions = EmbeddingOptions(),  # noqa: B008  (expanded into options by `command`)
    checkpoint: ModelFile = None,
    force: Force = False,
) -> None:
    """Are A and B the same person? Exit code 0: same, 1: different or refused (any pair), 2: error; 0 without a
    threshold."""
    from facecli.photos import compare

    checkpoint = model_or_newest(checkpoint)

    embedding.refuse(
        ("workers", "cache", "batch_size"), "compare embeds each photo once, in memory, without the loader"
    )
    result = compare(
        a, b, checkpoint=checkpoint, embedding=embedding.embed_options(align="auto"), all_faces=all_faces,
        threshold=threshold, show=show, force=force, min_quality=min_quality,
    )  # fmt: skip
    rows = result.rows()
    if as_json:
        print(json.dumps({"threshold_source": result.threshold_source, "pairs": rows}, indent=1))
    else:
        for path, faces in result.faces.items():
            if faces > 1:
                console.print(f"{path}: {faces} faces found, {'all compared' if all_faces else 'the largest used'}")
        for row in rows:
            decision = "" if row["same"] is None else ("  same" if row["same"] else "  different")
            if row["refused"]:
                decision = f"  refused ({row['refused']})"
            quality = "" if row["quality_a"] is None else f"  quality {row['quality_a']:.2f} / {row['quality_b']:.2f}"
            console.print(f"{row['a']}  {row['b']}  cosine {row['score']:.4f}{quality}{decision}", highlight=False)
        if result.threshold is None:
            console.print("no threshold: pass --threshold T, or calibrate one with 'facecli sweep --save-threshold'")
        else:
            console.print(f"threshold {result.threshold:g} (cosine, {result.threshold_source})")
    if result.same is not None and not result.same.all():
        raise typer.Exit(1)


@command("embed", PHOTOS)
def embed_command(
    source: Annotated[
        Path, typer.Argument(help="A folder (of identity folders or loose images) or a list (`id;path` or `path`).")
    ],
    out: Annotated[Path, typer.Option("--out", help="embeddings.npy (with a .csv of paths) or .parquet.")],
    plot: Annotated[Path | None, typer.Option("--plot", help="A 2-D map of the embeddings by identity (.png).")] = None,
    projection: Annotated[
        str | None,
        typer.Option(
            "--projection",
            help=Defaults("photos/embed_out", "embed_to_file")(
                "How --plot maps to 2-D: pca, or tsne (scikit-learn's t-SNE)", "projection"
            ),
        ),
    ] = None,
    tensorboard: Annotated[
        Path | None, typer.Option("--tensorboard", help="Write TensorBoard projector files (with thumbnails) here.")
    ] = None,
    embedding: EmbeddingOptions = EmbeddingOptions(),  # noqa: B008  (expanded into options by `command`)
    checkpoint: ModelFile = None,
    force: Force = False,
) -> None:
    """Write one embedding per image, for your own clustering, deduplication or search."""
    from facecli.photos import embed_to_file

    checkpoint = model_or_newest(checkpoint)

    result = embed_to_file(
        source, checkpoint=checkpoint, out=out, embedding=embedding.embed_options(align="auto"), plot=plot,
        **given(projection=projection), tensorboard=tensorboard, force=force,
    )  # fmt: skip
    beside = f" and {result.table}" if result.table else ""
    console.print(f"wrote {len(result.paths)} embeddings of size {result.embeddings.shape[1]} to {result.out}{beside}")
