"""Fine-tuning: a new model that starts from a facecli model file's trunk (and neck when it fits)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from facecli.checkpoint import load, state_problems
from facecli.errors import FaceCliError
from facecli.losses.margin import quality_of
from facecli.models import FaceEmbedder, ModelConfig, create_model


def fine_tune_config(init: ModelConfig, embedding_size: int | None, img_size: int | None, dropout: float | None,
                     loss: str, num_classes: int, colour: str) -> ModelConfig:  # fmt: skip
    """The --init model's config (its preprocessing kept) for the new run: new classes, no threshold yet, the
    colour of the new faces."""
    return dataclasses.replace(
        init,
        embedding_size=embedding_size or init.embedding_size,
        input_size=(img_size, img_size) if img_size else init.input_size,
        dropout=init.dropout if dropout is None else dropout,
        loss=loss,
        num_classes=num_classes,
        threshold=None,
        threshold_metric=None,
        quality=quality_of(loss),
        colour=colour,
        source=f"fine-tuned from {init.source}",
    )


def start_from(path: Path, config: ModelConfig) -> tuple[FaceEmbedder, str]:
    """A model built from `config` with the trunk of the model file at `path`, and its neck where every
    tensor fits; returns it and a note saying what was kept. A trunk that does not fit is an error naming
    its tensors."""
    source = load(path)
    model = create_model(config)
    trunk = source.trunk.state_dict()
    problems = state_problems(model.trunk.state_dict(), trunk, name=lambda k: f"trunk.{k}")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise FaceCliError(f"{path}: its trunk does not fit backbone '{config.backbone}': {shown}")
    model.trunk.load_state_dict(trunk)
    neck = source.neck.state_dict()
    if not state_problems(model.neck.state_dict(), neck):
        model.neck.load_state_dict(neck)
        return model, f"fine-tuning from {path}: trunk and neck kept, new head for {config.num_classes} classes"
    return model, (
        f"fine-tuning from {path}: trunk kept, new neck ({source.config.embedding_size}-d -> "
        f"{config.embedding_size}-d at {config.input_size[0]} px) and new head for {config.num_classes} classes"
    )
