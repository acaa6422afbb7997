"""What every mode shares: image files -> embeddings, through a backend, a loader and a cache."""

from facecli.embed.backends import Backend, Embedder, OnnxEmbedder, TorchEmbedder, open_embedder
from facecli.embed.files import Embedded, EmbedOptions, embed_files
from facecli.embed.loader import embed_images

__all__ = [
    "Backend",
    "EmbedOptions",
    "Embedded",
    "Embedder",
    "OnnxEmbedder",
    "TorchEmbedder",
    "embed_files",
    "embed_images",
    "open_embedder",
]
