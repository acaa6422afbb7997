"""Evaluation, prediction and threshold sweeps on embeddings (training and export come later)."""
