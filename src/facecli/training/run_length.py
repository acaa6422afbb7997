"""The run's length and input size from the step time measured on this machine (training/probe.py): the
epochs that fill the time budget, and a smaller input where the budget would hold too few of them."""

from __future__ import annotations

import dataclasses
import math
import time

from facecli.registry import BACKBONES
from facecli.training.options import TrainOptions

# The run's length: a time budget, filled at the step time measured on this machine (training/probe.py).
# Sizing it by image count (pixels as the cost) stopped 96 px runs at a third of their time: the step time
# fell 6x from 32 to 96 px where the pixel count grew 9x.
LOADER_EFFICIENCY = 0.9  # the loop ran at 87-98% of the model-only rate (benchmarks/step_overhead.py)
FORWARD_SHARE = 1 / 3  # an image's forward pass against its whole training step, for validation's cost
MIN_EPOCHS, MAX_EPOCHS = 3, 200
MIN_SIZE, MAX_SIZE, SIZE_STEP = 32, 112, 16  # the input sizes the recipe plans, in px
VALIDATIONS = 20
# The probe's few steps can be timed while other work slows the machine, or before it ends: on 2 CPU cores the
# same 96 px run probed 0.55 s and 1.03 s a step on two days (RESULTS.md). Once a run has spent RESIZE_AFTER of
# its budget, its own epochs (validations and all) re-measure its length, once; a change under RESIZE_CHANGE
# of the planned epochs is left alone.
RESIZE_AFTER, RESIZE_CHANGE = 0.15, 0.1


# Input size from the trunk's measured step time (issue 31; RESULTS.md "Input size from the step time"), 2 CPU
# cores, 40 grey identities at 96 px (raw pixels 0.52): iresnet18 fit 7 epochs at 96 px and scored 0.53, 44 at
# 48 px and 0.75, 77 at 32 px (fitted by this rule) and 0.77; VGG16 7 epochs at 96 px 0.64, 43 at 48 px 0.65,
# 91 at 32 px 0.68. On 64 px turned faces iresnet18 at 18-23 epochs stayed near raw pixels (0.49-0.56) and
# reached 0.81 fitted. Where the recipe chose the size, it takes the largest that fits MIN_FITTED_EPOCHS epochs
# (between 23 and 43, not measured more finely), the step time at a smaller size predicted from its pixels.
MIN_FITTED_EPOCHS = 40
PIXEL_COST_EXPONENT = 0.8  # step time ~ pixels^0.8: it fell ~6x from 96 to 32 px (9x fewer pixels)


def smallest_size(backbone: str) -> int:
    """The smallest input the recipe plans for `backbone`: MIN_SIZE, or the backbone's own minimum above it."""
    return max(MIN_SIZE, BACKBONES.get(backbone).min_size)


def _budget_epochs(options: TrainOptions, step_seconds: float, steps_per_epoch: int) -> float:
    return options.time_budget * LOADER_EFFICIENCY / (step_seconds * steps_per_epoch)


def _may_shrink(options: TrainOptions) -> bool:
    """Whether the recipe chose the input size of a budget-sized run, above the smallest it may take."""
    chosen = (options.recipe or {}).get("img_size")
    if options.epochs is not None or chosen is None or chosen["by"] != "recipe":
        return False
    return options.img_size > smallest_size(options.backbone)


def hopeless_step(options: TrainOptions, steps_per_epoch: int) -> float:
    """A step time at which the size will shrink whatever a longer measurement says (the budget holds half of
    MIN_FITTED_EPOCHS epochs): one step that slow is enough of a probe. Infinite where the size stays."""
    if not _may_shrink(options):
        return math.inf
    return options.time_budget * LOADER_EFFICIENCY / (steps_per_epoch * MIN_FITTED_EPOCHS / 2)


def fitted_size(options: TrainOptions, step_seconds: float, steps_per_epoch: int) -> TrainOptions | None:
    """Options with a smaller input size where the recipe chose the size and the budget holds fewer than
    MIN_FITTED_EPOCHS epochs at it; None where the size stays (given, fitting, or already the smallest)."""
    if not _may_shrink(options):
        return None
    size = options.img_size
    least = smallest_size(options.backbone)
    epochs = _budget_epochs(options, step_seconds, steps_per_epoch)
    if epochs >= MIN_FITTED_EPOCHS:
        return None
    smaller = size
    while smaller - SIZE_STEP >= least:
        smaller -= SIZE_STEP
        predicted = step_seconds * (smaller / size) ** (2 * PIXEL_COST_EXPONENT)
        if _budget_epochs(options, predicted, steps_per_epoch) >= MIN_FITTED_EPOCHS:
            break
    reason = (
        f"{size} px (the images' own) fits {epochs:.0f} epochs of {options.backbone} in {options.time_budget:g} s "
        f"at {step_seconds * 1000:.0f} ms a step (measured here); at 7-18 epochs iresnet18 and VGG16 stayed near "
        f"raw pixels, so the largest size that fits {MIN_FITTED_EPOCHS}"
    )
    recipe = {**options.recipe, "img_size": {"value": smaller, "reason": reason, "by": "recipe"}}
    return dataclasses.replace(options, img_size=smaller, recipe=recipe)


def size_run(
    options: TrainOptions, step_seconds: float, steps_per_epoch: int, val_images: int, spent: float = 0.0
) -> TrainOptions:
    """The epochs that fill the time budget at the measured step time (the `spent` seconds of start-up, data
    read and step timed, and validation's cost off the top first), and the validation interval, recorded with
    the measurement; options with a length given are kept."""
    if options.epochs is not None:
        return options
    validated = options.val_pairs is not None or options.val_bin is not None or bool(options.val_holdout)
    per_epoch = step_seconds * steps_per_epoch / LOADER_EFFICIENCY
    per_validation = val_images * step_seconds / options.batch_size * FORWARD_SHARE if validated else 0.0
    seconds = options.time_budget - spent - VALIDATIONS * per_validation
    # A cap of 10 steps per identity for small sets was tried and dropped: on 7 and 20 identities it
    # scored 0.70 and 0.56 where the full budget scored 0.73 and 0.63 (within the folds' +-0.08, no gain)
    epochs = int(min(MAX_EPOCHS, max(MIN_EPOCHS, seconds // per_epoch)))
    reason = (
        f"{options.time_budget:g} s ({spent:.0f} s of it spent starting) at {step_seconds * 1000:.0f} ms a step "
        f"(measured here), {steps_per_epoch} step(s) an epoch"
    )
    recipe = dict(options.recipe or {})
    recipe["epochs"] = {"value": epochs, "reason": reason, "by": "recipe"}
    filled = {"epochs": epochs}
    if validated and options.val_every is None:
        filled["val_every"] = _val_every(epochs)
        recipe["val_every"] = {
            "value": filled["val_every"],
            "reason": f"about {VALIDATIONS} validations a run",
            "by": "recipe",
        }
    return dataclasses.replace(options, **filled, recipe=recipe)


def _val_every(epochs: int) -> int:
    """The validation interval that gives about VALIDATIONS validations in `epochs`."""
    return max(1, math.ceil(epochs / VALIDATIONS))


def resized_run(options: TrainOptions, done: int, epoch_seconds: float, seconds_left: float) -> TrainOptions | None:
    """Options with the epochs that the budget's `seconds_left` holds after `done` epochs at the run's own
    `epoch_seconds`, where they differ from the planned epochs by more than RESIZE_CHANGE; None otherwise."""
    planned = options.epochs
    epochs = int(min(MAX_EPOCHS, max(MIN_EPOCHS, done + 1, done + seconds_left // epoch_seconds)))
    if abs(epochs - planned) <= max(1, RESIZE_CHANGE * planned):
        return None
    recipe = dict(options.recipe)
    reason = f"{recipe['epochs']['reason']}; re-measured after {done} epochs at {epoch_seconds:.2f} s an epoch"
    recipe["epochs"] = {"value": epochs, "reason": f"{reason}: {planned} -> {epochs}", "by": "recipe"}
    filled = {"epochs": epochs}
    if (recipe.get("val_every") or {}).get("by") == "recipe":
        filled["val_every"] = _val_every(epochs)
        recipe["val_every"] = {**recipe["val_every"], "value": filled["val_every"]}
    return dataclasses.replace(options, **filled, recipe=recipe)


@dataclasses.dataclass
class RunPace:
    """The run's own pace, which re-measures its length once it has spent RESIZE_AFTER of its budget, or at
    the end of its last epoch but one where the planned epochs end sooner."""

    started: float  # time.perf_counter() when the run began
    active: bool  # a new run sized to its budget; a length given, or a resumed run, stays as it is
    first: tuple[int, float] | None = None  # (epochs done, time) at the first epoch end seen

    def resized(self, options: TrainOptions, done: int) -> TrainOptions | None:
        """At the end of epoch `done`: the options re-measured by resized_run, once; None until then, after,
        and where the plan stands."""
        now = time.perf_counter()
        if not self.active or done >= options.epochs:
            return None
        if self.first is None:  # the first epoch pays for the loader's start: the pace counts from its end
            self.first = (done, now)
            return None
        if now - self.started < RESIZE_AFTER * options.time_budget and done < options.epochs - 1:
            return None  # before RESIZE_AFTER of the budget, unless the plan ends sooner
        self.active = False
        epoch_seconds = (now - self.first[1]) / (done - self.first[0])
        return resized_run(options, done, epoch_seconds, options.time_budget - (now - self.started))
