"""facecli: face verification and metric learning with PyTorch.

The public API is imported on first use, so that `facecli --help` does not wait for PyTorch.
"""

from facecli.lazy_api import lazy_api

__version__ = "0.1.0"

_API = {
    "FaceCliError": "facecli.errors",
    "FaceEmbedder": "facecli.models",
    "ModelConfig": "facecli.models",
    "Runtime": "facecli.runtime",
    "annotate": "facecli.data.annotation",
    "create_model": "facecli.models",
    "load": "facecli.checkpoint",
    "read_config": "facecli.checkpoint",
    "resolve_runtime": "facecli.runtime",
    "save_model": "facecli.checkpoint",
    "synth": "facecli.data.synth",
    "train": "facecli.training",
    "TrainOptions": "facecli.training",
    "evaluate": "facecli.verification",
    "predict": "facecli.verification",
    "sweep": "facecli.verification",
    "PairsInput": "facecli.verification",
    "EmbedOptions": "facecli.embed",
    "export": "facecli.exporting",
    "import_weights": "facecli.importer",
    "build_index": "facecli.identification",
    "identify": "facecli.identification",
    "evaluate_identification": "facecli.identification",
}
__all__ = sorted(_API)
__getattr__ = lazy_api(__name__, _API)
