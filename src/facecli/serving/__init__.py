"""`facecli serve`: the model, a gallery and its threshold behind an HTTP API."""

from facecli.serving.server import serve
from facecli.serving.service import FaceService, ServeSettings

__all__ = ["FaceService", "ServeSettings", "serve"]
