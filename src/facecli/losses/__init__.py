"""Losses by name: margin softmax (softmax, arcface, cosface, combined), triplet + miners, pair losses."""

from facecli.losses import margin, pairs, triplet  # noqa: F401  (registration)
