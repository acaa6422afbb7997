"""Photos in, answers out: `facecli compare` and `facecli embed` on raw photos or aligned crops."""

from facecli.photos.compare import CompareResult, compare
from facecli.photos.embed_out import EmbedResult, embed_to_file

__all__ = ["CompareResult", "EmbedResult", "compare", "embed_to_file"]
