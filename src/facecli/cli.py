"""The `facecli` command line: each command parses options, calls one library function, prints."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from facecli.console import annotation_tables, backbones_table, console, err_console, import_sources_table
from facecli.errors import FaceCliError

app = typer.Typer(
    name="facecli",
    help="Face verification and metric learning with PyTorch.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def command(name: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a command whose user errors become one red line on stderr and exit code 2."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except FaceCliError as exc:
                err_console.print(f"[bold red]error:[/] {' '.join(str(exc).split())}", highlight=False, soft_wrap=True)
                raise typer.Exit(2) from None
            except KeyboardInterrupt:
                err_console.print("[bold red]interrupted[/]")
                raise typer.Exit(130) from None

        return app.command(name)(run)

    return decorate


Force = Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")]
Workers = Annotated[int, typer.Option("--workers", min=1, help="Parallel reader threads.")]


@command("models")
def models_command(
    timm: Annotated[
        list[str] | None, typer.Option("--timm", help="Also list this timm architecture (repeatable).")
    ] = None,
) -> None:
    """List the backbones: input size, parameters, GFLOPs and embedding size."""
    from facecli.models.info import list_backbones

    console.print(backbones_table(list_backbones([f"timm/{name}" for name in timm or []])))


@command("synth")
def synth_command(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write person_NNNN/person_NNNN_NNNN.jpg into.")],
    identities: Annotated[int, typer.Option(help="Number of identities.")] = 20,
    images: Annotated[int, typer.Option(help="Images per identity.")] = 10,
    size: Annotated[int, typer.Option(help="Image side in pixels.")] = 64,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same images).")] = 0,
    workers: Workers = 4,
    force: Force = False,
) -> None:
    """Generate a synthetic face-like dataset with identity structure."""
    from facecli.data.synth import synth

    count = synth(out_dir, identities=identities, images=images, size=size, seed=seed, workers=workers, force=force)
    console.print(f"wrote {count} images of {identities} identities to {out_dir}")


@command("annotate")
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
    workers: Workers = 4,
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


@command("import")
def import_command(
    weights: Annotated[
        Path | None, typer.Argument(help="Published weights (.pth/.pt state dict or .safetensors).")
    ] = None,
    arch: Annotated[str | None, typer.Option("--arch", help="Layout of the weights; see --list.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="facecli .safetensors file to write.")] = None,
    list_sources: Annotated[bool, typer.Option("--list", help="Show the supported sources.")] = False,
    force: Force = False,
) -> None:
    """Convert published FaceNet / Inception-ResNet-v1 / ArcFace / VGG16 weights to a facecli model file."""
    from facecli.importer import SOURCES, import_weights

    if list_sources:
        console.print(import_sources_table(SOURCES))
        return
    if weights is None or arch is None or out is None:
        raise FaceCliError("import needs WEIGHTS, --arch SOURCE and --out FILE (see facecli import --list)")
    model = import_weights(weights, arch, out, force=force)
    c = model.config
    console.print(f"wrote {out}: {c.backbone}, {c.embedding_size}-d, input {c.input_size[0]}x{c.input_size[1]}")


def main() -> None:
    """Console-script entry point."""
    app()
