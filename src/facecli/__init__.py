"""facecli: face verification and metric learning with PyTorch."""

__version__ = "0.1.0"

from facecli.checkpoint import load, read_config, save_model  # noqa: E402
from facecli.data.annotation import annotate  # noqa: E402
from facecli.data.synth import synth  # noqa: E402
from facecli.errors import FaceCliError  # noqa: E402
from facecli.models import FaceEmbedder, ModelConfig, create_model  # noqa: E402
from facecli.runtime import Runtime, resolve_runtime  # noqa: E402

__all__ = [
    "FaceCliError",
    "FaceEmbedder",
    "ModelConfig",
    "Runtime",
    "annotate",
    "create_model",
    "load",
    "read_config",
    "resolve_runtime",
    "save_model",
    "synth",
]
