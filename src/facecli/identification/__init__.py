"""Identification (1:N): a gallery of known identities, searched for each query image."""

from facecli.identification.gallery import Gallery
from facecli.identification.search import IdentificationReport, build_index, evaluate_identification, identify

__all__ = ["Gallery", "IdentificationReport", "build_index", "evaluate_identification", "identify"]
