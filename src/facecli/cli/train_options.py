"""train's options in groups (data, model, loss, schedule, validation, run), each a dataclass that
`command` expands into options shown as one help panel. Every option is None unless given, so that a YAML
file or a resumed run's config.json wins; the help shows the default `TrainOptions` holds."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ClassVar

import typer

from facecli.cli.defaults import library_constant
from facecli.cli.options import LoaderWorkers
from facecli.errors import FaceCliError
from facecli.training.options import DEFAULT_K, DEFAULT_LR_GAMMA, TrainOptions

LOSS_OWN = "the recipe's, else the loss's own: see facecli models"
RECIPE = "chosen from the data"


def _default(name: str) -> str:
    """`TrainOptions`' default for option `name`, as help text."""
    field = next(f for f in dataclasses.fields(TrainOptions) if f.name == name)
    return RECIPE if field.default is None else str(field.default)


def _option(flag: str, help: str, *, default: str | None = None, **kwargs: object) -> typer.models.OptionInfo:
    """A train option whose help ends with its default (TrainOptions', unless `default` says otherwise)."""
    name = flag.split("/")[0].removeprefix("--").replace("-", "_")
    return typer.Option(flag, help=f"{help} (default: {default or _default(name)}).", **kwargs)


def _numbers(text: str | None, kind: type, option: str) -> list | None:
    if text is None:
        return None
    try:
        return [kind(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise FaceCliError(f"{option}: expected comma-separated numbers, got '{text}'") from None


class _Group:
    """An option group: its given values under `TrainOptions`' names."""

    PANEL: ClassVar[str]

    def given(self) -> dict:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


@dataclass
class DataGroup(_Group):
    PANEL: ClassVar[str] = "Data"
    data: Annotated[Path | None, typer.Option("--data", help="Dataset folder (one folder per identity) or a list.")] = (
        None
    )
    root: Annotated[Path | None, typer.Option("--root", help="Folder a training list's relative paths start from.")] = (
        None
    )
    columns: Annotated[str | None, typer.Option("--columns", help="A CSV list's path,label[,identity] columns.")] = None
    aug: Annotated[str | None, _option("--aug", "none, light or strong")] = None
    sampler: Annotated[str | None, _option("--sampler", "auto, pk (P identities x K images) or random")] = None
    k: Annotated[
        int | None,
        _option(
            "--k", "Images per identity in a P x K batch", default=f"chosen from the data, at most {DEFAULT_K}", min=1
        ),
    ] = None
    max_bad_fraction: Annotated[
        float | None,
        _option("--max-bad-fraction", "Images failing to decode are replaced and listed; stop past this fraction"),
    ] = None
    workers: LoaderWorkers = None

    def given(self) -> dict:
        return super().given() | {"columns": self.columns.split(",") if self.columns else None}


@dataclass
class ModelGroup(_Group):
    PANEL: ClassVar[str] = "Model"
    backbone: Annotated[str | None, _option("--backbone", "A registered backbone or timm/<name>")] = None
    img_size: Annotated[int | None, _option("--img-size", "Input side in pixels", default="the backbone's")] = None
    embedding_size: Annotated[
        int | None, _option("--embedding-size", "Embedding dimension", default="the backbone's")
    ] = None
    dropout: Annotated[
        float | None, _option("--dropout", "Dropout before the embedding layer", default="the backbone's")
    ] = None
    init: Annotated[
        Path | None, typer.Option("--init", help="Fine-tune: start from this facecli model file (import or a run).")
    ] = None
    freeze_trunk_epochs: Annotated[
        int | None, _option("--freeze-trunk-epochs", "With --init: train only neck and head first", min=0)
    ] = None
    trunk_lr_mult: Annotated[
        float | None, _option("--trunk-lr-mult", "With --init: the trunk's lr is --lr times this", default="1")
    ] = None


@dataclass
class LossGroup(_Group):
    PANEL: ClassVar[str] = "Loss"
    loss: Annotated[
        str | None,
        _option(
            "--loss",
            "triplet, arcface, cosface, combined, softmax, siamese, contrastive, adaface, subcenter_arcface, "
            "magface or curricularface",
        ),
    ] = None
    margin: Annotated[float | None, _option("--margin", "Loss margin", default=LOSS_OWN)] = None
    scale: Annotated[float | None, _option("--scale", "Logit scale s of the margin heads", default=LOSS_OWN)] = None
    margins: Annotated[str | None, _option("--margins", "m1,m2,m3 of the combined margin", default=LOSS_OWN)] = None
    mining: Annotated[
        str | None, _option("--mining", "Triplet miner: batch_hard, semi_hard or all", default=LOSS_OWN)
    ] = None
    aux_ce_weight: Annotated[
        float | None, _option("--aux-ce-weight", "Weight of triplet's auxiliary softmax", default=LOSS_OWN)
    ] = None
    easy_margin: Annotated[
        bool | None, _option("--easy-margin/--no-easy-margin", "ArcFace's easy margin", default=LOSS_OWN)
    ] = None
    sample_rate: Annotated[
        float | None,
        _option("--sample-rate", "Partial FC: score this fraction of the class centres", default=LOSS_OWN),
    ] = None
    sub_centers: Annotated[
        int | None, _option("--sub-centers", "subcenter_arcface: centres per class (K)", default=LOSS_OWN)
    ] = None
    h: Annotated[float | None, _option("--h", "adaface: how far the norm moves the margin", default=LOSS_OWN)] = None
    t_alpha: Annotated[
        float | None, _option("--t-alpha", "adaface: weight of each batch in the norm statistics", default=LOSS_OWN)
    ] = None
    l_a: Annotated[float | None, _option("--l-a", "magface: lowest magnitude", default=LOSS_OWN)] = None
    u_a: Annotated[float | None, _option("--u-a", "magface: highest magnitude", default=LOSS_OWN)] = None
    l_margin: Annotated[float | None, _option("--l-margin", "magface: margin at --l-a", default=LOSS_OWN)] = None
    u_margin: Annotated[float | None, _option("--u-margin", "magface: margin at --u-a", default=LOSS_OWN)] = None
    lambda_g: Annotated[
        float | None, _option("--lambda-g", "magface: weight of the magnitude regulariser", default=LOSS_OWN)
    ] = None

    def given(self) -> dict:
        return super().given() | {"margins": _numbers(self.margins, float, "--margins")}


@dataclass
class ScheduleGroup(_Group):
    PANEL: ClassVar[str] = "Schedule"
    epochs: Annotated[int | None, _option("--epochs", "Epochs (one epoch ~ every image once)", min=1)] = None
    time_budget: Annotated[
        float | None,
        _option(
            "--time-budget",
            "Seconds the whole run may take; the epochs are sized to it from a timed step",
            default=f"{library_constant('training/recipe', 'TIME_BUDGET_CPU_S')} on a CPU, "
            f"{library_constant('training/recipe', 'TIME_BUDGET_GPU_S')} on a GPU, half to fine-tune",
        ),
    ] = None
    batch_size: Annotated[int | None, _option("--batch-size", "Images per step per process", min=2)] = None
    optimizer: Annotated[str | None, _option("--optimizer", "sgd, adam or adamw")] = None
    lr: Annotated[float | None, _option("--lr", "Learning rate")] = None
    weight_decay: Annotated[float | None, _option("--weight-decay", "Weight decay (not on biases/norms)")] = None
    scheduler: Annotated[str | None, _option("--scheduler", "cos, or step (x --lr-gamma at --lr-steps)")] = None
    warmup_epochs: Annotated[float | None, _option("--warmup-epochs", "Linear lr warmup length")] = None
    lr_steps: Annotated[str | None, _option("--lr-steps", "Epochs where the step scheduler decays, e.g. 8,12")] = None
    lr_gamma: Annotated[
        float | None,
        _option("--lr-gamma", "Factor the step scheduler multiplies the lr by", default=str(DEFAULT_LR_GAMMA)),
    ] = None
    lr_scale_batch: Annotated[
        bool | None, _option("--lr-scale-batch/--no-lr-scale-batch", "Scale --lr by global batch / 64")
    ] = None
    clip_grad: Annotated[float | None, _option("--clip-grad", "Clip the gradient norm to this", default="none")] = None
    patience: Annotated[
        int | None,
        _option(
            "--patience",
            "Stop after this many validations without a better mean AUC of the last 3 (epochs by loss, unvalidated)",
            default="none",
        ),
    ] = None

    def given(self) -> dict:
        return super().given() | {"lr_steps": _numbers(self.lr_steps, int, "--lr-steps")}


@dataclass
class ValidationGroup(_Group):
    PANEL: ClassVar[str] = "Validation"
    val_pairs: Annotated[
        Path | None, typer.Option("--val-pairs", help="Pairs file validated each epoch (LFW 10-fold).")
    ] = None
    val_bin: Annotated[
        Path | None, typer.Option("--val-bin", help="An insightface .bin set validated each epoch (lfw.bin).")
    ] = None
    val_root: Annotated[
        Path | None, typer.Option("--val-root", help="Folder the validation pairs are relative to.")
    ] = None
    val_every: Annotated[int | None, _option("--val-every", "Validate every N epochs and after the last", min=1)] = None


@dataclass
class RunGroup(_Group):
    PANEL: ClassVar[str] = "Run"
    run_dir: Annotated[Path | None, typer.Option("--run-dir", help="Folder for checkpoints, metrics and config.")] = (
        None
    )
    seed: Annotated[int | None, _option("--seed", "Seed for weights, sampling and augmentation")] = None
    checkpoint_every: Annotated[
        int | None, _option("--checkpoint-every", "Also save resumable state every N steps (0: every epoch only)")
    ] = None
    tensorboard: Annotated[bool | None, _option("--tensorboard/--no-tensorboard", "Write TensorBoard events")] = None


TRAIN_GROUPS = (DataGroup, ModelGroup, LossGroup, ScheduleGroup, ValidationGroup, RunGroup)
