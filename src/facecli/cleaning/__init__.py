"""`facecli clean`: find mislabelled training images and identities that are one person under two names."""

from facecli.cleaning.clean import CleanReport, clean

__all__ = ["CleanReport", "clean"]
