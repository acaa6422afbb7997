"""Every knob of a training run in one dataclass: filled by the CLI or a YAML file, saved in the run."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from facecli.errors import FaceCliError, did_you_mean, unknown_choice
from facecli.fileio import read_text
from facecli.numbers import COUNT, FINITE, FRACTION, NOT_NEGATIVE, POSITIVE, SAMPLE_RATE, Bound, check_number

Optimizer = Literal["sgd", "adam", "adamw"]
Scheduler = Literal["cos", "step"]
OPTIMIZERS: tuple[str, ...] = get_args(Optimizer)
SCHEDULERS: tuple[str, ...] = get_args(Scheduler)

PATH_FIELDS = ("data", "root", "run_dir", "val_pairs", "val_root", "val_bin", "init")
LOSS_FIELDS = (
    "margin", "scale", "margins", "mining", "aux_ce_weight", "easy_margin", "sample_rate",
    "sub_centers", "h", "t_alpha", "l_a", "u_a", "l_margin", "u_margin", "lambda_g",
)  # fmt: skip
PK_LOSSES = ("triplet", "contrastive", "siamese")
DEFAULT_K = 4  # K of a P x K batch
DEFAULT_LR_GAMMA = 0.1  # the step scheduler's decay
DEFAULT_MOMENTUM = 0.9  # sgd's
# What each number may be, checked however the options arrive (CLI, YAML, Python, a saved config.json)
NUMBERS: dict[str, Bound] = {
    "epochs": COUNT, "batch_size": Bound(2, integer=True), "k": Bound(2, integer=True),
    "freeze_trunk_epochs": Bound(0, integer=True), "val_every": COUNT, "val_holdout": Bound(0, integer=True),
    "time_budget": POSITIVE, "img_size": Bound(16, 4096, integer=True), "embedding_size": Bound(2, 65536, integer=True),
    "dropout": Bound(0, 1, high_open=True), "lr": NOT_NEGATIVE, "momentum": Bound(0, 1, high_open=True),
    "weight_decay": NOT_NEGATIVE, "warmup_epochs": NOT_NEGATIVE, "lr_gamma": Bound(0, 1, low_open=True),
    "trunk_lr_mult": NOT_NEGATIVE, "margin": NOT_NEGATIVE, "scale": POSITIVE, "aux_ce_weight": NOT_NEGATIVE,
    "sample_rate": SAMPLE_RATE, "clip_grad": POSITIVE, "max_bad_fraction": FRACTION,
    "patience": COUNT, "checkpoint_every": Bound(0, integer=True), "workers": Bound(0, 256, integer=True),
    "val_batch_size": COUNT, "seed": Bound(0, 2**32 - 1, integer=True),
}  # fmt: skip
NUMBER_LISTS: dict[str, Bound] = {"lr_steps": COUNT, "margins": FINITE}


@dataclass
class TrainOptions:
    """One training run. Paths are kept as given; `config.json` in the run folder records all of it."""

    data: Path
    run_dir: Path
    root: Path | None = None
    columns: list[str] | None = None  # a CSV list's path, label[, identity] columns
    init: Path | None = None  # fine-tune from this facecli model file
    freeze_trunk_epochs: int = 0
    trunk_lr_mult: float | None = None
    # None: chosen by the recipe from the data (training/recipe.py), which records each choice and why
    loss: str | None = None
    backbone: str | None = None
    val_pairs: Path | None = None
    val_bin: Path | None = None  # an insightface .bin validation set (instead of --val-pairs)
    val_root: Path | None = None
    val_every: int | None = None  # validate every N epochs (and after the last)
    val_holdout: int | None = None  # identities held back to validate on where no validation set is given
    epochs: int | None = None
    time_budget: float | None = None  # seconds the run is sized to, where the epochs are not given
    batch_size: int | None = None
    img_size: int | None = None
    embedding_size: int | None = None
    dropout: float | None = None
    optimizer: Optimizer | None = None
    lr: float | None = None
    momentum: float | None = None  # sgd only (DEFAULT_MOMENTUM when not given)
    weight_decay: float | None = None
    scheduler: Scheduler | None = None
    warmup_epochs: float | None = None
    lr_steps: list[int] | None = None  # step scheduler only
    lr_gamma: float | None = None  # step scheduler only (DEFAULT_LR_GAMMA when not given)
    lr_scale_batch: bool | None = None
    aug: str | None = None
    sampler: str = "auto"
    k: int | None = None  # pk sampler only (DEFAULT_K when not given)
    # the loss's own options: None until given; the recipe fills the rest (its measured choice, else the
    # loss's own default) and records who chose each
    margin: float | None = None
    scale: float | None = None
    margins: list[float] | None = None
    mining: str | None = None
    aux_ce_weight: float | None = None
    easy_margin: bool | None = None
    sample_rate: float | None = None
    sub_centers: int | None = None  # subcenter_arcface
    h: float | None = None  # adaface
    t_alpha: float | None = None  # adaface
    l_a: float | None = None  # magface, and the rest of its options
    u_a: float | None = None
    l_margin: float | None = None
    u_margin: float | None = None
    lambda_g: float | None = None
    clip_grad: float | None = None
    max_bad_fraction: float = 0.01  # images failing to decode during the run, replaced, stop the run past this
    patience: int | None = None
    checkpoint_every: int = 0
    tensorboard: bool = False
    workers: int | None = None
    val_batch_size: int | None = None  # None: the validation model's preferred batch
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool | None = None  # None: where measured faster (runtime.channels_last_faster)
    compile: bool = False
    recipe: dict | None = None  # option -> {value, reason, by}: how each choice was made, filled by the recipe

    def to_dict(self) -> dict:
        """JSON-ready, paths as strings."""
        data = dataclasses.asdict(self)
        return {k: (str(v) if k in PATH_FIELDS and v is not None else v) for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: dict, source: str = "options") -> TrainOptions:
        """Build from a dict (a YAML file, a saved config.json); unknown keys are an error naming the closest."""
        names = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key not in names:
                raise FaceCliError(f"{source}: unknown training option '{key}'{did_you_mean(key, names)}")
        missing = [k for k in ("data", "run_dir") if data.get(k) is None]
        if missing:
            raise FaceCliError(f"{source}: training needs {' and '.join(missing)}")
        values = {k: (Path(v) if k in PATH_FIELDS and v is not None else v) for k, v in data.items()}
        return cls(**values)

    def sized_by_budget(self) -> bool:
        """Whether the run's length is (or will be) the recipe's, from --time-budget, not --epochs given."""
        chosen = (self.recipe or {}).get("epochs") or {}
        return self.time_budget is not None and (self.epochs is None or chosen.get("by") == "recipe")

    def sampler_kind(self) -> str | None:
        """`pk` for the metric losses (triplet, contrastive, siamese), shuffled batches for the heads;
        None while the loss is still to be chosen."""
        if self.sampler != "auto":
            return self.sampler
        if self.loss is None:
            return None
        return "pk" if self.loss in PK_LOSSES else "random"

    @property
    def images_per_identity(self) -> int:
        """K of a P x K batch."""
        return DEFAULT_K if self.k is None else self.k

    def loss_options(self) -> dict:
        """The loss options that are set, as the loss builder takes them."""
        options = {name: getattr(self, name) for name in LOSS_FIELDS if getattr(self, name) is not None}
        if "margins" in options:
            options["margins"] = tuple(options["margins"])
        return options

    def check(self) -> TrainOptions:
        """Every name, value and combination given checked before any work; returns the options unchanged."""
        from facecli.data.augment import AUGMENTATIONS
        from facecli.data.batch_plan import SAMPLERS
        from facecli.losses.options import check_loss_options, losses_taking_all
        from facecli.models import default_config

        if self.optimizer is not None:
            _choice("optimizer", self.optimizer, OPTIMIZERS)
        if self.scheduler is not None:
            _choice("scheduler", self.scheduler, SCHEDULERS)
        _choice("sampler", self.sampler, ("auto", *SAMPLERS))
        if self.aug is not None:
            _choice("augmentation", self.aug, AUGMENTATIONS)
        self._check_numbers()
        if self.backbone is not None:
            default_config(self.backbone, self.embedding_size, self.img_size, self.dropout)  # names and sizes
        sized = self.sized_by_budget()
        _applies("--time-budget", self.time_budget, "runs whose --epochs are not given", sized, "it is")
        kind = self.sampler_kind()
        _applies("--k", self.k, "the pk sampler", kind in ("pk", None), f"the sampler is {kind}")
        _applies("--lr-steps", self.lr_steps, "--scheduler step", self.scheduler == "step", "the scheduler is cos")
        _applies("lr_gamma", self.lr_gamma, "--scheduler step", self.scheduler == "step", "the scheduler is cos")
        _applies("momentum", self.momentum, "--optimizer sgd", self.optimizer == "sgd", f"it is {self.optimizer}")
        _applies("--val-root", self.val_root, "--val-pairs", self.val_pairs is not None, "none are given")
        given = self.val_pairs is not None or self.val_bin is not None
        _applies(
            "val_holdout", self.val_holdout or None, "runs without --val-pairs or --val-bin", not given, "one is given"
        )
        validated = given or self.val_holdout is None or self.val_holdout > 0  # None: the recipe holds some back
        needs = "--val-pairs, --val-bin or identities held back"
        _applies("--val-every", self.val_every, needs, validated, "there are none (too few identities to spare)")
        if self.val_pairs is not None and self.val_bin is not None:
            raise FaceCliError("validate on --val-pairs or on --val-bin, not both")
        _applies("--root", self.root, "a training list", not Path(self.data).is_dir(), f"{self.data} is a folder")
        is_csv = Path(self.data).suffix.lower() == ".csv"
        _applies("--columns", self.columns, "a CSV training list", is_csv, f"{self.data} is not a .csv")
        if self.columns is not None and len(self.columns) not in (2, 3):
            raise FaceCliError(f"--columns takes path,label[,identity]; got {','.join(self.columns)}")
        for option in ("freeze_trunk_epochs", "trunk_lr_mult"):
            given = getattr(self, option) not in (None, 0)
            _applies(
                f"--{option.replace('_', '-')}",
                True if given else None,
                "--init",
                self.init is not None,
                "no --init given",
            )
        # given loss options one loss must take together, with values it accepts (the loss may be the recipe's)
        check_loss_options(self.loss or losses_taking_all(self.loss_options())[0], self.loss_options())
        return self

    def _check_numbers(self) -> None:
        """Each number given is real, finite and in its range (NUMBERS), each list's items too."""
        for name, bound in NUMBERS.items():
            if getattr(self, name) is not None:
                check_number(_flag(name), getattr(self, name), bound)
        for name, bound in NUMBER_LISTS.items():
            values = getattr(self, name)
            if values is not None:
                if not isinstance(values, (list, tuple)):
                    raise FaceCliError(f"{_flag(name)} takes a list of numbers, got {values!r}")
                for value in values:
                    check_number(_flag(name), value, bound)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _choice(kind: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise unknown_choice(kind, value, allowed)


def _applies(option: str, value: object, needs: str, ok: bool, because: str) -> None:
    """Refuse an option given where it would be ignored."""
    if value is not None and not ok:
        raise FaceCliError(f"{option} applies to {needs}; {because}")


def read_yaml_options(path: str | os.PathLike[str]) -> dict:
    """Training options from a YAML file (the same names as the command-line options, with underscores)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(read_text(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise FaceCliError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FaceCliError(f"{path}: expected a mapping of option: value, got {type(data).__name__}")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def save_options(options: TrainOptions, path: Path) -> None:
    """Write the run's options as config.json, atomically."""
    from facecli.fileio import write_text_atomic

    write_text_atomic(path, json.dumps(options.to_dict(), indent=2) + "\n")


def load_options(path: Path) -> TrainOptions:
    """The options a run was started with."""
    if not path.is_file():
        raise FaceCliError(f"{path.parent}: not a facecli run folder (no config.json)")
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise FaceCliError(f"{path} line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise FaceCliError(f"{path}: damaged: expected the run's options, got a JSON {type(data).__name__}")
    return TrainOptions.from_dict(data, str(path))


RESUMABLE_CHANGES = (
    "epochs", "val_every", "patience", "max_bad_fraction", "checkpoint_every", "tensorboard", "workers",
    "val_batch_size", "device", "precision", "channels_last", "compile",
)  # fmt: skip


def resolve_options(given: dict, config_file: Path | None = None, resume: Path | None = None) -> TrainOptions:
    """Defaults, then a YAML file, then the options given on the command line (None = not given), checked.

    With `resume`, the run's own config.json replaces the first two, and only run-independent
    options (epochs, runtime, logging) may be given again.
    """
    given = {k: v for k, v in given.items() if v is not None}
    if resume is not None:
        # the run folder is where it is now: a run moved elsewhere resumes there
        saved = dataclasses.replace(load_options(Path(resume) / "config.json"), run_dir=Path(resume))
        changed = sorted(k for k, v in given.items() if k not in RESUMABLE_CHANGES and getattr(saved, k) != v)
        if changed:
            raise FaceCliError(
                f"--resume continues {resume} with its own settings; cannot change {', '.join(changed)} "
                f"(only {', '.join(RESUMABLE_CHANGES)})"
            )
        return dataclasses.replace(saved, **given).check()
    merged = read_yaml_options(config_file) if config_file is not None else {}
    merged.update(given)
    merged = with_working_folder_defaults(merged)
    return TrainOptions.from_dict(merged, str(config_file) if config_file else "command line").check()


def with_working_folder_defaults(options: dict) -> dict:
    """`data` and `run_dir` where neither the command line nor the YAML file gives them: ./cls_train.txt and
    a new folder under ./runs/, each said in one line and recorded in the recipe as the working folder's."""
    from facecli import workdir

    found = {}
    if options.get("data") is None:
        found["data"] = (workdir.training_list(), "cls_train.txt in the working folder (what annotate writes)")
    if options.get("run_dir") is None:
        found["run_dir"] = (workdir.new_run_dir(), "a new folder under runs/: no earlier run is overwritten")
    if not found:
        return options
    recipe = dict(options.get("recipe") or {})
    for name, (value, reason) in found.items():
        recipe[name] = {"value": str(value), "reason": reason, "by": "working folder"}
    return {**options, **{name: value for name, (value, _) in found.items()}, "recipe": recipe}
