"""Training commands: the model registry, importing published weights, training."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated

import typer

from facecli.cli.app import TRAINING, command
from facecli.cli.options import Force, LoaderWorkers, RuntimeOptions
from facecli.cli.tables import backbones_table, import_sources_table, registry_table, training_table
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
    from facecli.models.info import list_backbones
    from facecli.registry import HEADS, LOSSES

    console.print(backbones_table(list_backbones([f"timm/{name}" for name in timm or []])))
    console.print(registry_table("heads", {name: HEADS.get(name) for name in HEADS.names()}))
    console.print(registry_table("losses", {name: LOSSES.get(name) for name in LOSSES.names()}))


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


def _numbers(text: str | None, kind: type, option: str) -> list | None:
    if text is None:
        return None
    try:
        return [kind(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise FaceCliError(f"{option}: expected comma-separated numbers, got '{text}'") from None


@command("train", TRAINING)
def train_command(
    data: Annotated[
        Path | None, typer.Option("--data", help="Dataset folder (one folder per identity) or cls_train.txt.")
    ] = None,
    root: Annotated[
        Path | None, typer.Option("--root", help="Folder a training list's relative paths start from.")
    ] = None,
    columns: Annotated[
        str | None, typer.Option("--columns", help="A CSV list's path,label[,identity] column names.")
    ] = None,
    run_dir: Annotated[
        Path | None, typer.Option("--run-dir", help="Folder for checkpoints, metrics and config.")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML file with any of these options.")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue the run in this folder exactly.")] = None,
    init: Annotated[
        Path | None, typer.Option("--init", help="Fine-tune: start from this facecli model file (import or a run).")
    ] = None,
    freeze_trunk_epochs: Annotated[
        int | None, typer.Option("--freeze-trunk-epochs", min=0, help="With --init: train only neck and head first.")
    ] = None,
    trunk_lr_mult: Annotated[
        float | None, typer.Option("--trunk-lr-mult", help="With --init: the trunk's lr is --lr times this.")
    ] = None,
    loss: Annotated[
        str | None, typer.Option("--loss", help="triplet, arcface, cosface, combined, softmax, siamese, contrastive.")
    ] = None,
    backbone: Annotated[str | None, typer.Option("--backbone", help="A registered backbone or timm/<name>.")] = None,
    val_pairs: Annotated[
        Path | None, typer.Option("--val-pairs", help="Pairs file validated each epoch (LFW 10-fold).")
    ] = None,
    val_bin: Annotated[
        Path | None, typer.Option("--val-bin", help="An insightface .bin set validated each epoch (lfw.bin).")
    ] = None,
    val_root: Annotated[
        Path | None, typer.Option("--val-root", help="Folder the validation pairs are relative to.")
    ] = None,
    val_every: Annotated[
        int | None, typer.Option("--val-every", min=1, help="Validate every N epochs (and after the last).")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, help="Epochs (one epoch ~ every image once).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=2, help="Images per step per process.")] = None,
    img_size: Annotated[
        int | None, typer.Option("--img-size", help="Input side in pixels (default: the backbone's).")
    ] = None,
    embedding_size: Annotated[int | None, typer.Option("--embedding-size", help="Embedding dimension.")] = None,
    dropout: Annotated[float | None, typer.Option("--dropout", help="Dropout before the embedding layer.")] = None,
    optimizer: Annotated[str | None, typer.Option("--optimizer", help="sgd, adam or adamw.")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Learning rate.")] = None,
    weight_decay: Annotated[
        float | None, typer.Option("--weight-decay", help="Weight decay (not on biases/norms).")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="cos or step (x --lr-gamma at --lr-steps).")
    ] = None,
    warmup_epochs: Annotated[float | None, typer.Option("--warmup-epochs", help="Linear lr warmup length.")] = None,
    lr_steps: Annotated[
        str | None, typer.Option("--lr-steps", help="Epochs where the step scheduler decays, e.g. 8,12.")
    ] = None,
    lr_gamma: Annotated[
        float | None, typer.Option("--lr-gamma", help="Factor the step scheduler multiplies the lr by (0.1).")
    ] = None,
    lr_scale_batch: Annotated[
        bool | None, typer.Option("--lr-scale-batch/--no-lr-scale-batch", help="Scale --lr by global batch / 64.")
    ] = None,
    aug: Annotated[str | None, typer.Option("--aug", help="none, light or strong.")] = None,
    sampler: Annotated[
        str | None, typer.Option("--sampler", help="auto, pk (P identities x K images) or random.")
    ] = None,
    k: Annotated[int | None, typer.Option("--k", min=1, help="Images per identity in a P x K batch.")] = None,
    margin: Annotated[
        float | None, typer.Option("--margin", help="Loss margin (triplet 0.2, arcface 0.5, cosface 0.35).")
    ] = None,
    scale: Annotated[float | None, typer.Option("--scale", help="Logit scale s of the margin heads (64).")] = None,
    margins: Annotated[str | None, typer.Option("--margins", help="m1,m2,m3 of the combined margin.")] = None,
    mining: Annotated[str | None, typer.Option("--mining", help="Triplet miner: batch_hard, semi_hard or all.")] = None,
    aux_ce_weight: Annotated[
        float | None, typer.Option("--aux-ce-weight", help="Weight of triplet's auxiliary softmax.")
    ] = None,
    easy_margin: Annotated[
        bool | None, typer.Option("--easy-margin/--no-easy-margin", help="ArcFace's easy margin.")
    ] = None,
    sample_rate: Annotated[
        float | None,
        typer.Option("--sample-rate", help="Partial FC: score this fraction of the class centres (sharded under DDP)."),
    ] = None,
    clip_grad: Annotated[float | None, typer.Option("--clip-grad", help="Clip the gradient norm to this.")] = None,
    max_bad_fraction: Annotated[
        float | None,
        typer.Option(
            "--max-bad-fraction", help="Images failing to decode are replaced and listed; stop past this fraction."
        ),
    ] = None,
    patience: Annotated[
        int | None, typer.Option("--patience", help="Stop after this many epochs without improvement.")
    ] = None,
    checkpoint_every: Annotated[
        int | None, typer.Option("--checkpoint-every", help="Also save resumable state every N steps.")
    ] = None,
    tensorboard: Annotated[
        bool | None, typer.Option("--tensorboard/--no-tensorboard", help="Write TensorBoard events.")
    ] = None,
    workers: LoaderWorkers = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed for weights, sampling and augmentation.")] = None,
    runtime: RuntimeOptions = RuntimeOptions(),  # noqa: B008  (expanded into options by `command`)
    nproc: Annotated[int | None, typer.Option("--nproc", min=1, help="Launch N processes with torchrun (DDP).")] = None,
    force: Force = False,
) -> None:
    """Train an embedding model: triplet, ArcFace/CosFace, softmax or siamese/contrastive, resumable.

    Options left out are chosen from the data (loss, backbone, size, batch, epochs, lr, margins) and printed
    as a table with the reason for each; any option you give wins.
    """
    # every option is None when not given, so that a YAML file or the resumed run's config.json wins
    given = {k: v for k, v in locals().items() if k not in ("config", "resume", "nproc", "force", "runtime")}
    given |= dataclasses.asdict(runtime)
    from facecli.training import distributed, resolve_options, train

    if nproc is not None and nproc > 1:
        raise typer.Exit(distributed.launch(nproc, distributed.without_nproc(sys.argv[1:])))
    given["lr_steps"] = _numbers(lr_steps, int, "--lr-steps")
    given["columns"] = columns.split(",") if columns else None
    given["margins"] = _numbers(margins, float, "--margins")
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
