"""Search commands (1:N): build a gallery index, identify queries, measure identification."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facecli.cli.app import SEARCH, command
from facecli.cli.defaults import Defaults, given
from facecli.cli.options import EmbeddingOptions, Force, GalleryIndex, GalleryModel, MinQuality, model_or_newest
from facecli.cli.tables import identification_table
from facecli.console import console

BUILD = Defaults("identification/search", "build_index")
IDENTIFY = Defaults("identification/search", "identify")


@command("index", SEARCH)
def index_command(
    out: Annotated[Path, typer.Option("--out", help="Gallery index file to write or change.")],
    gallery_dir: Annotated[Path | None, typer.Argument(help="Image-folder gallery: one folder per identity.")] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint", "-c", help="facecli model to build with (default: the newest run's best under runs/)."
        ),
    ] = None,
    add: Annotated[Path | None, typer.Option("--add", help="Append the images of this image-folder dataset.")] = None,
    remove: Annotated[list[str] | None, typer.Option("--remove", help="Remove this identity (repeatable).")] = None,
    template: Annotated[
        str | None, typer.Option("--template", help=BUILD("image (every image) or mean (one per identity)", "template"))
    ] = None,
    index_type: Annotated[
        str | None, typer.Option("--index-type", help=BUILD("flat (exact) or ivf (approximate)", "index_type"))
    ] = None,
    nlist: Annotated[
        int | None, typer.Option("--nlist", min=0, help=BUILD("IVF lists (0: 4 sqrt(N))", "nlist"))
    ] = None,
    nprobe: Annotated[
        int | None, typer.Option("--nprobe", min=1, help=BUILD("IVF lists searched per query", "nprobe"))
    ] = None,
    embedding: EmbeddingOptions = EmbeddingOptions(),  # noqa: B008  (a group: expanded into options by `command`)
    force: Force = False,
) -> None:
    """Build a 1:N gallery index (each image embedded once), or add/remove images of an existing one."""
    from facecli.identification import build_index

    if gallery_dir is not None:
        checkpoint = model_or_newest(checkpoint)
    gallery, embedded, skipped = build_index(
        out=out,
        embedding=embedding.embed_options(),
        checkpoint=checkpoint,
        gallery_dir=gallery_dir,
        add=add,
        remove=remove,
        **given(template=template, index_type=index_type, nlist=nlist, nprobe=nprobe),
        force=force,
    )
    console.print(
        f"{out}: {len(set(gallery.identities))} identities, {len(gallery.identities)} images "
        f"({embedded} embedded now, {skipped} unreadable skipped), {gallery.index_type} search"
    )


@command("identify", SEARCH)
def identify_command(
    query: Annotated[Path, typer.Argument(help="An image, or a folder of images.")],
    index: GalleryIndex,
    out: Annotated[Path, typer.Option("--out", help="CSV: query, identity, score, top-k identities and scores.")],
    top_k: Annotated[
        int | None, typer.Option("--top-k", min=1, help=IDENTIFY("Identities to list per query", "top_k"))
    ] = None,
    threshold: Annotated[float | None, typer.Option("--threshold", help="Below this best score: unknown.")] = None,
    min_quality: MinQuality = None,
    checkpoint: GalleryModel = None,
    any_model: Annotated[
        bool,
        typer.Option("--any-model", help="Search with a model other than the gallery's (its int8 export, say)."),
    ] = False,
    embedding: EmbeddingOptions = EmbeddingOptions(),  # noqa: B008
    force: Force = False,
) -> None:
    """Who is this? Top-k gallery identities per query, open set with --threshold."""
    from facecli.identification import identify

    table = identify(
        index=index,
        query=query,
        out=out,
        embedding=embedding.embed_options(),
        **given(top_k=top_k),
        threshold=threshold,
        checkpoint=checkpoint,
        force=force,
        min_quality=min_quality,
        any_model=any_model,
    )
    refused = int((table["refused"] != "").sum()) if "refused" in table else 0
    console.print(f"wrote {len(table)} rows to {out}" + (f" ({refused} refused by --min-quality)" if refused else ""))


@command("eval-identify", SEARCH)
def eval_identify_command(
    index: GalleryIndex,
    probes: Annotated[
        Path, typer.Option("--probes", help="Image-folder probes; identities not in the gallery are unknowns.")
    ],
    plot: Annotated[Path | None, typer.Option("--plot", help="Write the CMC curve.")] = None,
    checkpoint: GalleryModel = None,
    embedding: EmbeddingOptions = EmbeddingOptions(),  # noqa: B008
    force: Force = False,
) -> None:
    """Rank-1/rank-5 identification rate, CMC, and DIR at FAR for open-set probes."""
    from facecli.identification import evaluate_identification

    report = evaluate_identification(
        index=index,
        probes=probes,
        embedding=embedding.embed_options(),
        plot=plot,
        checkpoint=checkpoint,
        force=force,
    )
    console.print(identification_table(report))
