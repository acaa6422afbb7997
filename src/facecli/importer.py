"""`facecli import`: published PyTorch weights (FaceNet, Inception-ResNet-v1, ArcFace, VGG16) to facecli files."""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from facecli.checkpoint import CONFIG_KEY, save_model, state_problems
from facecli.errors import FaceCliError, unknown_choice
from facecli.fileio import check_writable
from facecli.models import FaceEmbedder, ModelConfig, create_model

FACENET_PORT = (("backbone.model.", "trunk."), ("Bottleneck.", "neck.fc."), ("last_bn.", "neck.bn."))
STANDALONE_IRV1 = (("last_linear.", "neck.fc."), ("last_bn.", "neck.bn."), ("", "trunk."))
ARCFACE = (("bn2.", "neck.bn_in."), ("fc.", "neck.fc."), ("features.", "neck.bn."), ("", "trunk."))
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "backbone", "weights")


@dataclass(frozen=True)
class ImportSource:
    """One published weight layout: which backbone it fills, how its names map, how it preprocesses."""

    backbone: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: str
    rename: tuple[tuple[str, str], ...]
    drop: tuple[str, ...]
    preprocessing: str
    where: str
    published_lfw: str
    trunk_only: bool = False


def _facenet_port(backbone: str, file: str, lfw: str) -> ImportSource:
    return ImportSource(
        backbone,
        160,
        (0.0, 0.0, 0.0),
        (1.0, 1.0, 1.0),
        "letterbox",
        FACENET_PORT,
        ("classifier.",),
        "RGB/255, letterbox with grey padding",
        f"FaceNet port releases: {file}",
        lfw,
    )


def _arcface(depth: int, lfw: str) -> ImportSource:
    return ImportSource(
        f"iresnet{depth}",
        112,
        (0.5, 0.5, 0.5),
        (0.5, 0.5, 0.5),
        "resize",
        ARCFACE,
        (),
        "(RGB/255 - 0.5) / 0.5, ArcFace 5-point aligned",
        "insightface arcface_torch model zoo: backbone.pth",
        lfw,
    )


SOURCES: dict[str, ImportSource] = {
    "facenet-mobilenet": _facenet_port("mobilenet", "facenet_mobilenet.pth", "98.23%"),
    "facenet-inception-resnetv1": _facenet_port("inception_resnetv1", "facenet_inception_resnetv1.pth", "98.78%"),
    "inception-resnetv1": ImportSource(
        "inception_resnetv1",
        160,
        (0.5, 0.5, 0.5),
        (128 / 255,) * 3,
        "resize",
        STANDALONE_IRV1,
        ("logits.",),
        "(RGB - 127.5) / 128, MTCNN-aligned 160x160",
        "standalone Inception-ResNet-v1 port: 20180402-114759-vggface2.pt, 20180408-102900-casia-webface.pt",
        "99.65% (VGGFace2), 99.05% (CASIA-WebFace)",
    ),
    "arcface-iresnet18": _arcface(18, "99.7% (MS1MV3, model zoo)"),
    "arcface-iresnet34": _arcface(34, "99.8% (MS1MV3, model zoo)"),
    "arcface-iresnet50": _arcface(50, "99.8% (MS1MV3, model zoo)"),
    "arcface-iresnet100": _arcface(100, "99.8% (MS1MV3, model zoo)"),
    "vgg16": ImportSource(
        "vgg16",
        105,
        (0.0, 0.0, 0.0),
        (1.0, 1.0, 1.0),
        "resize",
        (("vgg.features.", "trunk.features."), ("features.", "trunk.features.")),
        ("classifier.", "vgg.classifier.", "fully_connect"),
        "RGB/255, 105x105",
        "torchvision vgg16 / siamese network checkpoints (features.*)",
        "n/a (trunk only)",
        trunk_only=True,
    ),
}


def get_source(name: str) -> ImportSource:
    """The import source called `name`, or a FaceCliError listing them."""
    if name not in SOURCES:
        raise unknown_choice("import source", name, SOURCES)
    return SOURCES[name]


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors from a .pth/.pt (weights_only unpickling) or .safetensors file, unwrapped, `module.` stripped."""
    path = Path(path)
    if not path.is_file():
        raise FaceCliError(f"{path}: no such weights file")
    if path.suffix == ".safetensors":
        try:
            with safe_open(str(path), framework="pt") as f:
                ours = CONFIG_KEY in (f.metadata() or {})
            data: object = load_file(str(path))
        except Exception as exc:  # safetensors raises several types for a bad file
            raise FaceCliError(f"{path}: not a readable .safetensors file ({exc})") from None
        if ours:
            raise FaceCliError(f"{path}: already a facecli model; every command reads it as it is (--init: fine-tune)")
    else:
        with open(path, "rb") as f:
            magic = f.read(2)
        if magic != b"PK" and magic[:1] != b"\x80":  # torch.save writes a zip archive; older torch a pickle
            raise FaceCliError(f"{path}: not a PyTorch weights file (neither torch.save's zip archive nor a pickle)")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            reason = str(exc).splitlines()[0] if str(exc) else "unsupported object"
            raise FaceCliError(
                f"{path}: refused, it needs arbitrary unpickling, which can run code ({reason}); "
                "re-save only the state dict: torch.save(model.state_dict(), path)"
            ) from None
        except Exception as exc:  # noqa: BLE001 - a file that is no pickle fails in many ways (KeyError for text)
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise FaceCliError(f"{path}: not a readable PyTorch weights file ({reason})") from None
    while isinstance(data, dict) and not any(isinstance(v, torch.Tensor) for v in data.values()):
        inner = next((data[k] for k in WRAPPER_KEYS if isinstance(data.get(k), dict)), None)
        if inner is None:
            raise FaceCliError(f"{path}: no state dict found (top-level keys: {', '.join(map(str, data))})")
        data = inner
    if not isinstance(data, dict):
        raise FaceCliError(f"{path}: holds a {type(data).__name__}, expected a state dict")
    return {k.removeprefix("module."): v for k, v in data.items() if isinstance(v, torch.Tensor)}


def _rename(state: dict[str, torch.Tensor], source: ImportSource) -> dict[str, tuple[str, torch.Tensor]]:
    """facecli key -> (the source's key, tensor), training-only heads dropped."""
    renamed = {}
    for key, value in state.items():
        if key.startswith(source.drop):
            continue
        new = next((n + key[len(o) :] for o, n in source.rename if key.startswith(o)), key)
        renamed[new] = (key, value)
    return renamed


def _source_key(key: str, source: ImportSource) -> str:
    """The name the source gives to facecli's `key`."""
    return next((o + key[len(n) :] for o, n in source.rename if key.startswith(n)), key)


def convert(state: dict[str, torch.Tensor], arch: str, origin: str = "weights") -> FaceEmbedder:
    """A facecli model holding the published weights `state` of layout `arch`."""
    source = get_source(arch)
    renamed = _rename(state, source)
    fc = renamed.get("neck.fc.weight")
    config = ModelConfig(
        backbone=source.backbone,
        embedding_size=int(fc[1].shape[0]) if fc is not None and not source.trunk_only else 128,
        input_size=(source.input_size, source.input_size),
        mean=source.mean,
        std=source.std,
        resize=source.resize,
        colour="colour",  # every published face model here was trained on colour photos (CASIA, VGGFace2, MS1M)
        source=f"{arch} ({origin})",
    )
    model = create_model(config)
    expected = model.state_dict()
    tensors = {new: value for new, (_, value) in renamed.items()}
    problems = state_problems(
        expected,
        tensors,
        name=lambda k: renamed[k][0] if k in renamed else _source_key(k, source),
        optional="neck." if source.trunk_only else None,
    )
    if problems:
        raise FaceCliError(f"{origin}: does not fit '{arch}' ({len(problems)} problems): " + "; ".join(problems))
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()}, strict=not source.trunk_only)
    return model.eval()


def import_weights(
    weights: str | os.PathLike[str], *, arch: str, out: str | os.PathLike[str], force: bool = False
) -> FaceEmbedder:
    """Read published weights, map them onto a registry backbone and write a facecli .safetensors."""
    get_source(arch)
    check_writable(out, force=force, inputs=(weights,))
    model = convert(read_state_dict(weights), arch, origin=Path(weights).name)
    save_model(model, out, force=force)
    return model
