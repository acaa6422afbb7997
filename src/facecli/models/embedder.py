"""The embedding model: trunk + neck + L2 normalisation, built from a self-describing config."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facecli import __version__
from facecli.data.transforms import Preprocessing
from facecli.errors import FaceCliError
from facecli.models.necks import FlattenNeck, PoolNeck
from facecli.models.spec import BackboneSpec
from facecli.numbers import COUNT, FINITE, Bound, check_number
from facecli.registry import BACKBONES


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model and feed it: stored in every checkpoint."""

    backbone: str
    embedding_size: int
    input_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    channel_order: str = "RGB"
    resize: str = "resize"
    dropout: float = 0.0
    loss: str | None = None
    num_classes: int | None = None
    threshold: float | None = None
    threshold_metric: str | None = None
    quality: str | None = None  # "feature_norm": the norm before L2 normalisation scores face quality (QUALITY)
    colour: str | None = None  # the faces it was trained on, "grey" or "colour" (COLOURS); None where unknown
    source: str = "facecli"
    version: str = field(default=__version__)

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return dataclasses.asdict(self)

    def threshold_for(self, metric: str) -> float | None:
        """The calibrated threshold when it was chosen for `metric` scores, else None."""
        return self.threshold if self.threshold is not None and self.threshold_metric == metric else None

    @property
    def preprocessing(self) -> Preprocessing:
        """What turns a decoded image into this model's input."""
        return Preprocessing(self.input_size, self.mean, self.std, self.channel_order, self.resize)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """Rebuild from a dict (tuples come back from JSON lists); unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise FaceCliError(f"checkpoint config has unknown fields {unknown}; was it written by a newer facecli?")
        data = dict(data)
        for key in ("input_size", "mean", "std"):
            if key in data:
                data[key] = tuple(_numbers(key, data[key], 2 if key == "input_size" else 3))
        if data.get("quality") not in (None, *QUALITY):
            known = ", ".join(QUALITY)
            raise FaceCliError(f"checkpoint config: unknown quality score {data['quality']!r}, expected one of {known}")
        if data.get("colour") not in (None, *COLOURS):
            raise FaceCliError(f"checkpoint config: colour {data['colour']!r}, expected one of {', '.join(COLOURS)}")
        for key, value in data.items():
            if value is not None and key in CONFIG_NUMBERS and key not in ("input_size", "mean", "std"):
                check_number(key, value, CONFIG_NUMBERS[key], "checkpoint config")
        return cls(**data)


# What a model file's numbers may be: a file whose metadata claims a 100000 px input would otherwise ask for
# 30 GB an image, and a NaN threshold would decide "different" for every pair
CONFIG_NUMBERS: dict[str, Bound] = {
    "embedding_size": Bound(2, 65536, integer=True),
    "input_size": Bound(16, 4096, integer=True),
    "mean": FINITE,
    "std": Bound(0, low_open=True),
    "dropout": Bound(0, 1, high_open=True),
    "num_classes": COUNT,
    "threshold": FINITE,
}


# what a model's quality score can be: the feature norm of a model trained with a head that makes it one
QUALITY = ("feature_norm",)
# what the training faces were: int8 calibration refuses faces of the other kind (exporting/int8.py)
COLOURS = ("grey", "colour")


def _numbers(key: str, value: object, count: int) -> list:
    """`value` as a list of `count` numbers, each checked against CONFIG_NUMBERS[key]."""
    if not isinstance(value, (list, tuple)) or len(value) != count:
        raise FaceCliError(f"checkpoint config: {key} must be a list of {count} numbers, got {value!r}")
    return [check_number(key, item, CONFIG_NUMBERS[key], "checkpoint config") for item in value]


def default_config(
    backbone: str,
    embedding_size: int | None = None,
    input_size: int | None = None,
    dropout: float | None = None,
    **overrides: object,
) -> ModelConfig:
    """A config with the backbone's own defaults, any of them overridden."""
    spec: BackboneSpec = BACKBONES.get(backbone)
    size = spec.input_size if input_size is None else input_size
    if size < spec.min_size:
        raise FaceCliError(f"input size {size} is below {backbone}'s minimum of {spec.min_size}")
    return ModelConfig(
        backbone=backbone,
        embedding_size=spec.embedding_size if embedding_size is None else embedding_size,
        input_size=(size, size),
        mean=spec.mean,
        std=spec.std,
        resize=spec.resize,
        dropout=spec.dropout if dropout is None else dropout,
        **overrides,  # type: ignore[arg-type]
    )


def _feature_shape(spec: BackboneSpec, input_size: tuple[int, int]) -> torch.Size:
    """The trunk's output shape for one image, found with a forward pass on the meta device."""
    with torch.device("meta"):
        probe = spec.build().eval()
        return probe(torch.empty(1, 3, *input_size)).shape[1:]


class FaceEmbedder(nn.Module):
    """Maps a preprocessed (N, 3, H, W) batch to L2-normalised (N, embedding_size) embeddings."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        spec: BackboneSpec = BACKBONES.get(config.backbone)
        self.config = config
        shape = _feature_shape(spec, config.input_size)
        self.trunk = spec.build()
        if spec.neck == "flatten":
            self.neck: nn.Module = FlattenNeck(shape[0], (shape[1], shape[2]), config.embedding_size, config.dropout)
        else:
            self.neck = PoolNeck(shape[0], config.embedding_size, config.dropout)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding before L2 normalisation: what training losses and heads see."""
        return self.neck(self.trunk(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.features(x), p=2, dim=1)

    def preprocess(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """Decoded uint8 RGB images (any size) to the normalised batch this model was trained on."""
        return self.config.preprocessing.batch(images)


def create_model(backbone: str | ModelConfig, **options: object) -> FaceEmbedder:
    """Build a fresh (untrained) embedding model from a backbone name and options, or a config."""
    config = backbone if isinstance(backbone, ModelConfig) else default_config(backbone, **options)  # type: ignore[arg-type]
    return FaceEmbedder(config)
