"""Training: the loop, its options, optimizer and schedule, run log and multi-process start-up.

The loop is imported on first use, so that the options (and the CLI's help, which reads their defaults)
load without PyTorch.
"""

from importlib import import_module

_API = {
    "TrainOptions": "facecli.training.options",
    "resolve_options": "facecli.training.options",
    "TrainResult": "facecli.training.run_log",
    "train": "facecli.training.loop",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> object:
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'facecli.training' has no attribute {name!r}")
