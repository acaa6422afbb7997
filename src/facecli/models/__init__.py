"""Backbones (registered on import), necks and the embedding model."""

from facecli.models import inception_resnet, iresnet, mobilenet, timm_backbone, vgg  # noqa: F401  (registration)
from facecli.models.embedder import FaceEmbedder, ModelConfig, create_model, default_config

__all__ = ["FaceEmbedder", "ModelConfig", "create_model", "default_config"]
