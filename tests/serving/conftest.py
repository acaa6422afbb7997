"""Models and images the server tests share: two small untrained models (one with a calibrated threshold),
crops of the model's input size, and real photos."""

from __future__ import annotations

import base64

import cv2
import numpy as np
import pytest
import torch

from facecli.checkpoint import save_model, update_config
from facecli.data.synth import synth
from facecli.models import create_model

THRESHOLD = 0.5


def _model(path, seed):
    torch.manual_seed(seed)
    model = create_model("mobilenet", input_size=64, embedding_size=16)
    model.train()
    with torch.no_grad():  # BatchNorm statistics of something, so faces differ more than at initialisation
        model(torch.randn(8, 3, 64, 64))
    save_model(model.eval(), path)
    return path


@pytest.fixture(scope="session")
def serve_world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    update_config(_model(tmp / "model.safetensors", 0), threshold=THRESHOLD, threshold_metric="cosine")
    _model(tmp / "other.safetensors", 1)
    synth(tmp / "faces", identities=4, images=3, size=64, seed=4)
    blank = np.full((150, 200, 3), 128, np.uint8)
    blank[:, :100] = 90  # a photo (not the model's input size) with no face in it
    cv2.imwrite(str(tmp / "no_face.png"), blank)
    return tmp


def crops(world) -> list:
    """The synthetic crops, by identity: {name: [path, ...]}."""
    return {p.name: sorted(p.iterdir()) for p in sorted((world / "faces").iterdir())}


def b64(path) -> str:
    return base64.b64encode(path.read_bytes()).decode()
