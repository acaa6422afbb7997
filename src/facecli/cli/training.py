"""Training commands: the model registry, importing published weights, training."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated

import typer

from facecli.cli.app import RESUME_NEWEST, TRAINING, command
from facecli.cli.options import Force, RuntimeOptions
from facecli.cli.tables import backbones_table, import_sources_table, registry_table, training_table
from facecli.cli.train_options import DataGroup, LossGroup, ModelGroup, RunGroup, ScheduleGroup, ValidationGroup
from facecli.console import console, err_console
from facecli.errors import FaceCliError


@command("models", TRAINING)
def models_command(
    timm: Annotated[
        list[str] | None, typer.Option("--timm", help="Also list this timm architecture (repeatable).")
    ] = None,
) -> None:
    """List the registry: backbones (input size, parameters, GFLOPs, embedding size), heads and losses."""
    import facecli.losses  # noqa: F401  (registers heads and losses)
    from facecli.losses.options import loss_defaults
    from facecli.models.info import list_backbones
    from facecli.registry import HEADS, LOSSES

    console.print(backbones_table(list_backbones([f"timm/{name}" for name in timm or []])))
    console.print(registry_table("heads", {name: HEADS.get(name) for name in HEADS.names()}))
    console.print(
        registry_table(
            "losses",
            {name: LOSSES.get(name) for name in LOSSES.names()},
            {name: loss_defaults(name) for name in LOSSES.names()},
        )
    )


@command("import", TRAINING)
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
    c = import_weights(weights, arch=arch, out=out, force=force).config
    console.print(f"wrote {out}: {c.backbone}, {c.embedding_size}-d, input {c.input_size[0]}x{c.input_size[1]}")


@command("train", TRAINING)
def train_command(
    data: DataGroup = DataGroup(),  # noqa: B008  (option groups are expanded into options by `command`)
    model: ModelGroup = ModelGroup(),  # noqa: B008
    loss: LossGroup = LossGroup(),  # noqa: B008
    schedule: ScheduleGroup = ScheduleGroup(),  # noqa: B008
    validation: ValidationGroup = ValidationGroup(),  # noqa: B008
    run: RunGroup = RunGroup(),  # noqa: B008
    runtime: RuntimeOptions = RuntimeOptions(),  # noqa: B008
    config: Annotated[Path | None, typer.Option("--config", help="YAML file with any of these options.")] = None,
    resume: Annotated[
        Path | None,
        typer.Option("--resume", help="Continue the run in this folder exactly (alone: the newest unfinished run)."),
    ] = None,
    nproc: Annotated[int | None, typer.Option("--nproc", min=1, help="Launch N processes with torchrun (DDP).")] = None,
    force: Force = False,
) -> None:
    """Train an embedding model: triplet, ArcFace/CosFace, softmax or siamese/contrastive, resumable.

    Options left out are chosen from the data (loss, backbone, size, batch, epochs, lr, margins) and printed
    as a table with the reason for each; any option you give wins.
    """
    from facecli.training import distributed, resolve_options, train

    if resume == Path(RESUME_NEWEST):
        from facecli.training.run_folder import newest_unfinished_run

        resume = newest_unfinished_run()

    if nproc is not None and nproc > 1:
        argv = distributed.without_nproc(sys.argv[1:])
        if resume is None and config is None:  # every process must train the same data into the same folder
            from facecli.workdir import new_run_dir, training_list

            argv += ["--data", str(training_list())] if data.data is None else []
            argv += ["--run-dir", str(new_run_dir())] if run.run_dir is None else []
        raise typer.Exit(distributed.launch(nproc, argv))
    given = dataclasses.asdict(runtime)
    for group in (data, model, loss, schedule, validation, run):
        given |= group.given()
    if resume is not None:
        given["run_dir"] = resume
    result = train(resolve_options(given, config, resume), resume=resume is not None, force=force)
    console.print(training_table(result))
    if result.stopped == "interrupted":
        err_console.print(f"interrupted; continue with: facecli train --resume {result.run_dir}", highlight=False)
        raise typer.Exit(130)
    if result.stopped == "bad images":
        raise FaceCliError(
            f"{result.notes[-1]}. Fix or remove them, then continue with: facecli train --resume {result.run_dir} "
            "(or raise --max-bad-fraction)"
        )
