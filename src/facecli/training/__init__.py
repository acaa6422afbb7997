"""Training: the loop, its options, optimizer and schedule, run log and multi-process start-up.

The loop is imported on first use, so that the options (and the CLI's help, which reads their defaults)
load without PyTorch.
"""

from facecli.lazy_api import lazy_api

_API = {
    "TrainOptions": "facecli.training.options",
    "resolve_options": "facecli.training.options",
    "TrainResult": "facecli.training.run_log",
    "train": "facecli.training.loop",
}
__all__ = sorted(_API)
__getattr__ = lazy_api(__name__, _API)
