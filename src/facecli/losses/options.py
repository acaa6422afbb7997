"""Which options each loss takes, read from its builder's signature, and one checked way to build a loss."""

from __future__ import annotations

import inspect

from torch import nn

from facecli.errors import FaceCliError
from facecli.registry import LOSSES

SHAPE_ARGUMENTS = ("embedding_size", "num_classes")


def loss_defaults(name: str) -> dict[str, object]:
    """The options loss `name` takes, with its defaults (the builder's keyword parameters)."""
    parameters = inspect.signature(LOSSES.get(name)).parameters
    return {k: p.default for k, p in parameters.items() if k not in SHAPE_ARGUMENTS}


def losses_taking(option: str) -> list[str]:
    """The registered losses that take `option`."""
    return [name for name in LOSSES.names() if option in loss_defaults(name)]


def losses_taking_all(options: dict[str, object]) -> list[str]:
    """The losses that take every one of `options`; none is a one-line error."""
    losses = [name for name in LOSSES.names() if set(options) <= set(loss_defaults(name))]
    if not losses:
        flags = ", ".join("--" + o.replace("_", "-") for o in options)
        raise FaceCliError(f"no loss takes all of {flags} (see facecli models)")
    return losses


def check_loss_options(name: str, given: dict[str, object]) -> dict[str, object]:
    """The full options loss `name` is built with: its defaults, then `given`; an option it does not take, or
    a value or combination the loss refuses, is a one-line error before any work (a 2-class loss is built)."""
    defaults = loss_defaults(name)
    for option in given:
        if option not in defaults:
            users = losses_taking(option)
            flag = "--" + option.replace("_", "-")
            applies = f"applies to {', '.join(users)}" if users else "is not a loss option"
            raise FaceCliError(f"{flag} {applies}; the loss is {name}")
    options = {**defaults, **given}
    build_loss(name, 2, 2, options)
    return options


def build_loss(name: str, embedding_size: int, num_classes: int, options: dict[str, object]) -> nn.Module:
    """The loss `name` built with exactly `options` (as returned by check_loss_options)."""
    return LOSSES.get(name)(embedding_size, num_classes, **options)
