"""Deployment: ONNX and TorchScript files that carry their preprocessing, verified against PyTorch."""

from facecli.exporting.exporter import ExportResult, export

__all__ = ["ExportResult", "export"]
