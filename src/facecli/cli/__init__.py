"""The `facecli` command line, one module per mode; nothing in the library imports it."""

from facecli.cli import data, training, evaluation, deployment, serving, search, photos  # noqa: F401, I001  (registers, in workflow order)
from facecli.cli.app import app

__all__ = ["app"]
