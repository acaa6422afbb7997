"""Training: the loop, its options, optimizer and schedule, run log and multi-process start-up."""

from facecli.training.loop import train
from facecli.training.options import TrainOptions, resolve_options
from facecli.training.run_log import TrainResult

__all__ = ["TrainOptions", "TrainResult", "resolve_options", "train"]
