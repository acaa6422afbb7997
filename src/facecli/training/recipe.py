"""A training recipe planned from the data: a fingerprint of the set, then one rule per choice, each with the
measurement behind it (benchmarks/train_recipes.py, RESULTS.md). A choice the user made is kept as given."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from facecli.data.images import ImageError, looks_grey
from facecli.data.training_set import TrainingSet
from facecli.losses.options import loss_defaults, losses_taking_all
from facecli.models import ModelConfig
from facecli.training.options import PK_LOSSES, TrainOptions
from facecli.training.published_recipe import published_recipe
from facecli.training.run_length import MAX_SIZE, MIN_SIZE, SIZE_STEP, VALIDATIONS, smallest_size

SAMPLED_IMAGES = 64  # images read to learn the image size and colour
# the run's length is a time budget, filled at the step time measured on this machine (training/run_length.py)
TIME_BUDGET_CPU_S = 210.0  # 3.5 minutes, so that a whole no-flag run stays under 5 minutes on 2 cores
TIME_BUDGET_GPU_S = 900.0  # no GPU figure in RESULTS.md yet: benchmarks/gpu_check.sh measures the step times
BATCH = 64  # images a step; a P x K batch takes the nearest multiple of K below it
# identities: triplet was ahead of ArcFace (s=32, m=0.3) at 7 and 20 (0.78 vs 0.72, 0.65 vs 0.62), level at
# 270 (0.78 vs 0.77), behind at 950 (0.92 vs 0.93); the switch lies between, not measured more finely
TRIPLET_BELOW = 150
# images per identity: above TRIPLET_BELOW too, triplet with every violating triplet ("all") was far ahead of
# ArcFace (s=32, m=0.3) within the CPU budget at every count measured up to 12: 3 each (200 and 400 identities: 0.76 vs
# 0.64, 0.84 vs 0.68), 5 (300: 0.89 vs 0.66), 8 (300: 0.87 vs 0.77) and 12 (1000: 0.93 vs 0.85). At 20 each
# the two were level (300: ArcFace 0.90, triplet 0.89); ArcFace, the published recipes' loss, stays above 12.
TRIPLET_AT_MOST_PER_IDENTITY = 12
# augmentation: on few identities with few images each, with the long schedules the budget gives them,
# strong augmentation (rotation, colour, blur) was ahead of light: 20 identities x 10 images 0.73 vs 0.63,
# 50 grey identities x 4 images 0.78 vs 0.73; on 7 digit classes of ~180 images each it was behind (0.66
# vs 0.73). The bound on images per identity lies between 10 and 180, not measured more finely.
STRONG_AUG_BELOW = TRIPLET_BELOW
STRONG_AUG_MAX_PER_IDENTITY = 20
# validation held back from the training data where none is given: below HOLDOUT_MIN_IDENTITIES identities
# every one is worth more to training than to judging it (not measured finely); a tenth, 4 to HOLDOUT_MOST
HOLDOUT_MIN_IDENTITIES, HOLDOUT_FRACTION, HOLDOUT_MOST = 20, 0.1, 100
# Early stopping: PATIENCE validations without a better score (state.Best: the mean AUC of the last 3), a
# quarter of the VALIDATIONS a run makes. Measured with 4-8 identities held back (27 runs on 6 sets and pairings,
# benchmarks/model_selection.py, RESULTS.md "Early stopping on a few held-back identities"): patience 5 never
# lowered the test accuracy of the model kept, and stopped 5 runs at 60-90% of their length; patience 3 lost up
# to 0.08. (Before the smoothed rule, one validation's accuracy on 80 pairs ran the patience out at epoch 90 of
# 200 and kept a model below raw pixels, so runs holding back fewer than 10 identities went their full budget.)
PATIENCE = 5


@dataclass(frozen=True)
class Fingerprint:
    """What the recipe is planned from."""

    identities: int
    images: int
    min_per_identity: int
    median_per_identity: float
    singletons: int
    image_side: int  # median shorter side of a sample of the images
    grey: bool  # most sampled images have one channel
    device: str
    cores: int
    with_positives: int = 0  # identities with 2+ images
    packed: bool = False  # a RecordIO set

    @property
    def colour(self) -> str:
        """ "grey" or "colour", as a model config records its training faces."""
        return "grey" if self.grey else "colour"

    def describe(self) -> str:
        """One line for the run log."""
        return (
            f"data: {self.identities} identities, {self.images} images ({self.min_per_identity} min / "
            f"{self.median_per_identity:g} median per identity, {self.singletons} with one), "
            f"{self.colour} ~{self.image_side} px; {self.device}, {self.cores} cores"
        )


def _size_and_colour(data: TrainingSet, index: int) -> tuple[int, bool]:
    """Shorter side and greyness: from the file's header where it stores one channel, else from the pixels
    (a grey face saved as colour is grey), as int8 calibration judges its faces."""
    if data.records is None:
        with Image.open(data.paths[index]) as image:
            if image.mode in ("L", "LA", "I", "I;16", "1"):
                return min(image.size), True
    image = data.read(index)
    return min(image.shape[:2]), looks_grey(image)


def fingerprint(data: TrainingSet, device: str) -> Fingerprint:
    """Counts from the labels; size and colour from the headers of a sample of images."""
    counts = np.bincount(data.labels, minlength=data.num_classes)
    sample = np.linspace(0, len(data.paths) - 1, min(SAMPLED_IMAGES, len(data.paths))).astype(int)
    sides, grey = [], 0
    for index in sample:
        try:
            side, is_grey = _size_and_colour(data, int(index))
        except (OSError, ImageError):
            continue  # a bad image is the loader's to report
        sides.append(side)
        grey += is_grey
    return Fingerprint(
        identities=data.num_classes,
        images=len(data.paths),
        min_per_identity=int(counts.min()),
        median_per_identity=float(np.median(counts)),
        singletons=int((counts == 1).sum()),
        image_side=int(np.median(sides)) if sides else 112,
        grey=grey > len(sides) / 2,
        device=device,
        cores=os.cpu_count() or 1,
        with_positives=int((counts >= 2).sum()),
        packed=data.records is not None,
    )


@dataclass(frozen=True)
class Choice:
    """One option of the recipe: its value, why, and who chose it."""

    option: str
    value: object
    reason: str
    by: str  # "you", "recipe", "fine-tune" or "loss" (the loss's own default)


def _loss(options: TrainOptions, fp: Fingerprint) -> tuple[str, str]:
    given = options.loss_options()
    if given:
        usable = losses_taking_all(given)
        preferred = "triplet" if fp.identities < TRIPLET_BELOW else "arcface"
        loss = preferred if preferred in usable else usable[0]
        return loss, f"takes {', '.join('--' + o.replace('_', '-') for o in given)}"
    if fp.identities < TRIPLET_BELOW:
        return "triplet", f"{fp.identities} identities (< {TRIPLET_BELOW}): triplet was ahead of ArcFace on few"
    if _few_images(fp):
        return "triplet", (
            f"{fp.median_per_identity:g} images per identity (median, <= {TRIPLET_AT_MOST_PER_IDENTITY}): triplet "
            "with all triplets was ahead of ArcFace at 3-12 (0.85-0.93 vs 0.66-0.85 on 300-1000 identities)"
        )
    return "arcface", (
        f"{fp.identities} identities (>= {TRIPLET_BELOW}) of {fp.median_per_identity:g} images (median, "
        f"> {TRIPLET_AT_MOST_PER_IDENTITY}): the published recipes' loss (level with triplet at 20 each: 0.90 vs 0.89)"
    )


def _few_images(fp: Fingerprint) -> bool:
    """Many identities with few images each: where triplet with all triplets was measured ahead of ArcFace."""
    return fp.identities >= TRIPLET_BELOW and fp.median_per_identity <= TRIPLET_AT_MOST_PER_IDENTITY


def _img_size(fp: Fingerprint, backbone: str) -> tuple[int, str]:
    least = smallest_size(backbone)
    size = int(min(max(least, MAX_SIZE), max(least, round(fp.image_side / SIZE_STEP) * SIZE_STEP)))
    if size > fp.image_side and least > MIN_SIZE:
        return size, f"{backbone}'s smallest input (the images are ~{fp.image_side} px)"
    bounds = f"between {MIN_SIZE} and {MAX_SIZE}"
    return size, f"the images' own size (~{fp.image_side} px), {bounds}: no upsampling, affordable steps"


def _time_budget(fp: Fingerprint, fine_tune: bool) -> tuple[float, str]:
    gpu = fp.device.startswith("cuda")
    budget = TIME_BUDGET_GPU_S if gpu else TIME_BUDGET_CPU_S
    reason = "on a GPU (not measured yet)" if gpu else f"on {fp.cores} CPU cores: a no-flag run within 5 minutes"
    if fine_tune:
        return budget / 2, f"half of {budget:g} s {reason}: fine-tuning starts from learned weights"
    return budget, f"{budget:g} s {reason}"


def _holdout(fp: Fingerprint) -> tuple[int, str]:
    if fp.packed:
        return 0, "packed data: give --val-bin (insightface's lfw.bin) to validate"
    if fp.with_positives < HOLDOUT_MIN_IDENTITIES:
        return 0, f"{fp.with_positives} identities with 2+ images (< {HOLDOUT_MIN_IDENTITIES}): all are needed to train"
    count = int(min(HOLDOUT_MOST, max(4, round(HOLDOUT_FRACTION * fp.identities))))
    return (
        count,
        f"a tenth of the identities (4 to {HOLDOUT_MOST}), never trained on: best model, early stop, threshold",
    )


def _augmentation(fp: Fingerprint) -> tuple[str, str]:
    if fp.identities < STRONG_AUG_BELOW and fp.median_per_identity <= STRONG_AUG_MAX_PER_IDENTITY:
        few = f"{fp.identities} identities of {fp.median_per_identity:g} images (median)"
        return "strong", f"{few}: strong was ahead of light on few (0.73 vs 0.63 at 20 x 10)"
    if fp.identities < STRONG_AUG_BELOW:
        return "light", f"{fp.median_per_identity:g} images per identity (median): strong was behind on many (digits)"
    return "light", "mirror, small shifts and zoom: trained the sets of 270 identities and more"


# the recipe's own values for a loss's options, where measured; the rest are the loss's defaults
MEASURED_LOSS_OPTIONS = {
    "arcface": {
        "scale": (32.0, "s=32 trains at once from scratch (0.93), s=64 barely moves (0.75)"),
        "margin": (0.3, "m=0.3 with s=32, as measured"),
    },
    # on labels 10% wrong (45 identities x 10 images): held-out 0.78 with s=32, m=0.3 against 0.51 with the
    # authors' s=64, m=0.5, which did not fit the set in the budget (RESULTS.md, `facecli clean`)
    "subcenter_arcface": {
        "scale": (32.0, "s=32 fit labels 10% wrong in the budget (held-out 0.78), s=64 did not (0.51)"),
        "margin": (0.3, "m=0.3 with s=32, as measured on wrong labels"),
    },
}


# Trunks that train badly from scratch with the recipe's usual values (issue 31; RESULTS.md "Triplet +
# MobileNetV1" and "Time-budgeted recipe and the seeds' combinations"), 2 CPU cores.
# MobileNetV1: its depthwise-separable trunk has no shortcuts and learns slowly at the lr that trains
# resnet10t. Cross-entropy on 7 digit classes reached 0.59 train accuracy in 150 steps at AdamW 2e-3, 0.82 at
# 1e-2 (resnet10t: 0.95 at 2e-3). With triplet, batch-hard mining never left the start (loss 0.42 -> 0.42 over
# 40 epochs of 20 synthetic identities, held-out 0.53 = raw pixels); every violating triplet ("all") gave 0.64
# at 1e-2, and light augmentation instead of strong 0.69-0.71 (resnet10t with the recipe: 0.64). Dropout 0.5
# or 0: no difference.
# VGG16 (the siamese repos'): 13 convolutions and no BatchNorm. Fed RGB/255 as the siamese repos feed it,
# contrastive, 40 epochs of synth30 (raw pixels 0.54): AdamW 2e-3 0.52, 5e-4 0.49, 2e-4 0.55, 1e-4 0.64, 5e-5
# 0.65; triplet at 2e-3 0.50. Fed centred input (models/vgg.py), with the time budget: pose64 1e-4 0.78, 3e-4
# 0.81, 1e-3 0.68; grey96x10 1e-4 0.72, 3e-4 0.78 (RESULTS.md "VGG16 from scratch").
TRUNK_CHOICES: dict[str, dict[str, tuple[object, str]]] = {
    "mobilenet": {
        "lr": (1e-2, "MobileNetV1 learns slowly from scratch: 2e-3 left it near raw pixels, 1e-2 trained it"),
        "mining": ("all", "MobileNetV1 from scratch: batch-hard mining left the loss flat, all triplets trained it"),
        "aug": ("light", "MobileNetV1 from scratch: light was ahead of strong (0.69-0.71 vs 0.64)"),
    },
    "vgg16": {
        "lr": (3e-4, "VGG16 has no BatchNorm: from scratch 3e-4 trained it (0.78-0.81), 1e-3 and 1e-4 less"),
    },
}


def _trunk_choice(backbone: str, option: str, loss: str) -> tuple[object, str] | None:
    """The measured choice for a trunk that trains badly with the recipe's usual value, if any."""
    if option == "mining" and loss != "triplet":
        return None
    return TRUNK_CHOICES.get(backbone, {}).get(option)


def _loss_options(loss: str, choose: Callable[..., object], planned: dict) -> dict[str, object]:
    """Every option of `loss` not `planned` yet: given, else the recipe's measured value, else the loss's own."""
    measured = MEASURED_LOSS_OPTIONS.get(loss, {})
    filled = {}
    for option, default in loss_defaults(loss).items():
        if option in planned:
            continue
        if option in measured:
            filled[option] = choose(option, *measured[option])
        else:
            filled[option] = choose(option, default, f"{loss}'s own default", "loss")
    if isinstance(filled.get("margins"), tuple):
        filled["margins"] = list(filled["margins"])
    return filled


def plan(options: TrainOptions, fp: Fingerprint, init: ModelConfig | None = None) -> TrainOptions:
    """The options with every choice left open filled from the fingerprint; `recipe` records all of them."""
    choices: list[Choice] = []
    fine_tune = init is not None

    def choose(option: str, value: object, reason: str, by: str = "recipe") -> object:
        given = getattr(options, option)
        if given is not None:
            choices.append(Choice(option, given, "given", "you"))
            return given
        choices.append(Choice(option, value, reason, by))
        return value

    published = None if fine_tune else published_recipe(fp)
    if published is not None:
        filled = {name: choose(name, value, why) for name, (value, why) in published.items()}
        filled |= _loss_options(filled["loss"], choose, filled)
        return _recorded(options, filled, choices)
    loss = choose("loss", *_loss(options, fp))
    if fine_tune:
        backbone = choose("backbone", init.backbone, f"the --init model's ({init.backbone})", "fine-tune")
        size = choose("img_size", init.input_size[0], "the --init model's input size", "fine-tune")
    else:
        backbone = choose(
            "backbone", "timm/resnet10t", "a residual trunk: 0.93 where MobileNetV1 reached 0.81 at 32 px"
        )
        size = choose("img_size", *_img_size(fp, backbone))
    filled = {"loss": loss, "backbone": backbone, "img_size": size}
    if (options.sampler == "auto" and loss in PK_LOSSES) or options.sampler == "pk":
        k = int(min(4, max(2, fp.median_per_identity)))
        filled["k"] = choose("k", k, f"{fp.median_per_identity:g} images per identity (median), at most 4")
        batch = BATCH // filled["k"] * filled["k"]  # P x K: a whole number of identities (63 for K = 3)
        filled["batch_size"] = choose("batch_size", batch, f"{batch // filled['k']} identities x {filled['k']}")
    else:
        filled["batch_size"] = choose("batch_size", BATCH, "shuffled images")
    if options.epochs is None:  # the length follows from the budget once a step is timed (size_run)
        filled["time_budget"] = choose("time_budget", *_time_budget(fp, fine_tune))
    else:
        choose("epochs", options.epochs, "")
    filled["optimizer"] = choose("optimizer", "adamw", "AdamW trained every set in the recipe table")
    filled["weight_decay"] = choose("weight_decay", 5e-4, "5e-4, as the FaceNet ports and arcface_torch use")
    filled["scheduler"] = choose("scheduler", "cos", "cosine decay after the warm-up")
    filled["lr_scale_batch"] = choose("lr_scale_batch", False, "the lr is for the batch as it is")
    if fine_tune:
        filled["lr"] = choose("lr", 2e-4, "fine-tuning: a tenth of the from-scratch lr", "fine-tune")
    else:
        lr = _trunk_choice(backbone, "lr", loss) or (2e-3, "AdamW at 2e-3 trained every set in the recipe table")
        filled["lr"] = choose("lr", *lr)
        mining = _trunk_choice(backbone, "mining", loss)
        if mining is None and loss == "triplet" and _few_images(fp):
            mining = ("all", "many identities, few images each: all triplets trained (0.76-0.93 vs ArcFace 0.64-0.85)")
        if mining is not None:
            filled["mining"] = choose("mining", *mining)
    validated = options.val_pairs is not None or options.val_bin is not None
    if not validated:
        filled["val_holdout"] = choose("val_holdout", *_holdout(fp))
        validated = filled["val_holdout"] > 0
    if validated:
        if options.epochs is not None:
            every = max(1, math.ceil(options.epochs / VALIDATIONS))
            filled["val_every"] = choose("val_every", every, f"about {VALIDATIONS} validations a run")
        if options.epochs is None:  # a length the user fixed is run in full unless they give --patience
            filled["patience"] = choose("patience", PATIENCE, f"{PATIENCE} validations without a better score")
    filled["warmup_epochs"] = choose("warmup_epochs", 0.5, "half an epoch of linear warm-up")
    filled |= _loss_options(loss, choose, filled)
    trunk_aug = None if fine_tune else _trunk_choice(backbone, "aug", loss)
    filled["aug"] = choose("aug", *(trunk_aug or _augmentation(fp)))
    return _recorded(options, filled, choices)


def _recorded(options: TrainOptions, filled: dict, choices: list[Choice]) -> TrainOptions:
    recipe = {
        **(options.recipe or {}),
        **{c.option: {"value": c.value, "reason": c.reason, "by": c.by} for c in choices},
    }
    return dataclasses.replace(options, **filled, recipe=recipe)


# Combinations measured to train badly, with the measurement and what works instead (benchmarks/RESULTS.md,
# "Time-budgeted recipe and the seeds' combinations", 2026-11-28, 2 CPU cores)
SMALL_SET_IMAGES = 2_000
HEAVY_ON_A_CPU = ("iresnet18", "iresnet34", "iresnet50", "iresnet100", "vgg16")  # measured: iresnet18, vgg16


def warnings(options: TrainOptions, fp: Fingerprint) -> list[str]:
    """One line per choice the user made that was measured to do badly on data like theirs."""
    found = []
    if options.backbone == "mobilenet" and options.init is None and fp.images < SMALL_SET_IMAGES:
        found.append(
            f"warning: MobileNetV1 from scratch on {fp.images} images is a gamble: with the lr, miner and "
            "augmentation planned for it, held-out accuracy on six small generated sets ranged 0.56-0.78 (the "
            "recipe's timm/resnet10t 0.68-0.92), and on 40 real people (the AT&T faces) it stayed below raw pixels "
            "(0.80 vs 0.83). "
            "Start from published weights (facecli import, then --init) or leave --backbone to the recipe"
        )
    heavy = options.backbone in HEAVY_ON_A_CPU and not fp.device.startswith("cuda") and options.init is None
    size_given = (options.recipe or {}).get("img_size", {}).get("by") == "you"  # else fitted_size sizes it
    if heavy and size_given and options.img_size >= 64 and fp.images < SMALL_SET_IMAGES and options.epochs is None:
        found.append(
            f"warning: {options.backbone} from scratch at {options.img_size} px on a CPU fits few epochs in the time "
            "budget: on two small sets of 64 and 96 px the budget held 7-13 epochs of iresnet18 or vgg16, and "
            "iresnet18 ended at raw pixels (0.53-0.57); fitted to 32-48 px, as the recipe does, iresnet18 reached "
            "0.81-0.82 and vgg16 0.78-0.81. Leave "
            "--img-size to the recipe, or give a longer --time-budget"
        )
    return found


def recipe_rows(options: TrainOptions) -> list[tuple[str, str, str, str]]:
    """(option, value, by, reason) rows of a planned run, for the table printed at start."""
    return [(name, _shown(c["value"]), c["by"], c["reason"]) for name, c in (options.recipe or {}).items()]


def _shown(value: object) -> str:
    if isinstance(value, float) and value and not math.isclose(value, round(value)):
        return f"{value:g}"
    return str(value)
