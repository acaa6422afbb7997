"""The published recipes for data at the scale of CASIA-WebFace and up on a GPU: each choice names its source."""

from __future__ import annotations

from typing import TYPE_CHECKING

from facecli.training.optim import NOMINAL_BATCH

if TYPE_CHECKING:
    from facecli.training.recipe import Fingerprint

# Data at the scale of CASIA-WebFace (10k identities, 0.5M images) and up, on a GPU: the published recipes
# that reach the published numbers, followed instead of extrapolating the small-set rules of recipe.py.
PUBLISHED_MIN_IDENTITIES, PUBLISHED_MIN_IMAGES = 5_000, 200_000
MS1M_IDENTITIES = 50_000  # MS1M (85k), Glint360K (360k), WebFace42M (2M): arcface_torch's schedule
ARCFACE_TORCH = "insightface arcface_torch configs"
PUBLISHED_BATCH = 512  # arcface_torch: "lr = 0.1 # batch size is 512"


def published_recipe(fp: Fingerprint) -> dict[str, tuple[object, str]] | None:
    """The published recipe for this scale, option -> (value, reason naming its source); None below it."""
    if not fp.device.startswith("cuda") or fp.identities < PUBLISHED_MIN_IDENTITIES or fp.images < PUBLISHED_MIN_IMAGES:
        return None
    if fp.identities >= MS1M_IDENTITIES:
        epochs, steps = 16, [8, 14]
        schedule = f"{ARCFACE_TORCH} (ms1mv2 'emore'): 16 epochs, lr x0.1 at 8 and 14"
    else:
        epochs, steps = 26, [12, 20, 24]
        schedule = "AdaFace's CASIA-WebFace run (scripts/run_ir50): 26 epochs, lr x0.1 at 12, 20 and 24"
    scale = f"{fp.identities} identities, {fp.images} images on a GPU"
    return {
        "loss": ("arcface", f"{scale}: ArcFace s=64 m=0.5 as {ARCFACE_TORCH} train it"),
        "backbone": ("iresnet50", f"{ARCFACE_TORCH}: r50"),
        "img_size": (112, f"{ARCFACE_TORCH}: 112 x 112 aligned crops"),
        "embedding_size": (512, f"{ARCFACE_TORCH}: 512-d"),
        "optimizer": ("sgd", f"{ARCFACE_TORCH}: SGD, momentum 0.9"),
        "momentum": (0.9, f"{ARCFACE_TORCH}"),
        "weight_decay": (5e-4, f"{ARCFACE_TORCH}: 5e-4"),
        "batch_size": (128, f"{ARCFACE_TORCH}: 128 per GPU"),
        "lr": (0.1 * NOMINAL_BATCH / PUBLISHED_BATCH, f"{ARCFACE_TORCH}: 0.1 for a global batch of 512, linear"),
        "lr_scale_batch": (True, f"{ARCFACE_TORCH}: the lr follows the global batch"),
        "scheduler": ("step", schedule),
        "lr_steps": (steps, schedule),
        "epochs": (epochs, schedule),
        "warmup_epochs": (0.0, f"{ARCFACE_TORCH}: no warm-up"),
        "scale": (64.0, f"{ARCFACE_TORCH}: margin_list (1.0, 0.5, 0.0), s=64"),
        "margin": (0.5, f"{ARCFACE_TORCH}: m=0.5"),
        "aug": ("light", f"{ARCFACE_TORCH}: a horizontal flip (light adds small shifts and zoom)"),
        "val_holdout": (0, "give --val-bin lfw.bin (and cfp_fp, agedb_30) as arcface_torch validates"),
    }
