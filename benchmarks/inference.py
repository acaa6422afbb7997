"""Embedding throughput (images/s at batch 64) and latency (batch 1, median and p95) per inference path.

Paths: torch eager fp32, channels_last fp32, channels_last + bf16 autocast (where the device supports
it), torch.compile, TorchScript, and ONNX Runtime. Models are freshly initialised (speed does not
depend on the weights). Usage: python benchmarks/inference.py [--backbones mobilenet iresnet18]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from facecli.checkpoint import save_model
from facecli.embed import OnnxEmbedder
from facecli.exporting import export
from facecli.models import create_model
from facecli.registry import BACKBONES
from facecli.runtime import resolve_runtime


def timed(fn: Callable[[torch.Tensor], object], x: torch.Tensor, repeats: int, sync: Callable[[], None]) -> list[float]:
    fn(x)  # warm-up (and compilation)
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x)
        sync()
        times.append(time.perf_counter() - start)
    return times


def torch_path(model: torch.nn.Module, runtime) -> Callable[[torch.Tensor], object]:  # noqa: ANN001
    net = runtime.prepare(model)

    def run(x: torch.Tensor) -> object:
        with torch.inference_mode(), runtime.autocast():
            return net(runtime.batch(x))

    return run


def paths_for(name: str, tmp: Path, device: str) -> dict[str, Callable[[torch.Tensor], object]]:
    model = create_model(name).eval()
    ckpt = save_model(model, tmp / f"{name}.safetensors", force=True)
    paths = {"torch eager fp32": torch_path(create_model(model.config).eval(), resolve_runtime(device, "fp32"))}
    paths["channels_last fp32"] = torch_path(model, resolve_runtime(device, "fp32", channels_last=True))
    bf16_ok = device == "cpu" or (torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if bf16_ok:
        paths["channels_last bf16"] = torch_path(model, resolve_runtime(device, "bf16", channels_last=True))
    paths["torch.compile fp32"] = torch_path(model, resolve_runtime(device, "fp32", compile=True))
    export(checkpoint=ckpt, fmt="torchscript", out=tmp / f"{name}.pt", verify=False, force=True)
    scripted = torch.jit.load(str(tmp / f"{name}.pt"), map_location=device)

    def run_script(x: torch.Tensor) -> object:
        with torch.inference_mode():
            return scripted(x.to(device))

    paths["TorchScript fp32"] = run_script
    export(checkpoint=ckpt, fmt="onnx", out=tmp / f"{name}.onnx", verify=False, force=True)
    onnx = OnnxEmbedder(tmp / f"{name}.onnx")
    paths[f"onnxruntime ({onnx.session.get_providers()[0].removesuffix('ExecutionProvider')})"] = lambda x: onnx.run(
        x.numpy()
    )
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["mobilenet", "iresnet18"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--latency-runs", type=int, default=30)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    table = Table(title=f"inference on {args.device} ({torch.get_num_threads()} threads), batch {args.batch_size}")
    for column in ("backbone", "path", "images/s", "latency median (ms)", "latency p95 (ms)"):
        table.add_column(column, justify="right" if column not in ("backbone", "path") else "left")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.backbones:
            size = BACKBONES.get(name).input_size
            big, one = torch.randn(args.batch_size, 3, size, size), torch.randn(1, 3, size, size)
            for label, run in paths_for(name, Path(tmp), args.device).items():
                throughput = args.batch_size / statistics.median(timed(run, big, args.batches, sync))
                latency = np.array(timed(run, one, args.latency_runs, sync)) * 1000
                table.add_row(
                    name, label, f"{throughput:.1f}", f"{np.median(latency):.1f}", f"{np.percentile(latency, 95):.1f}"
                )
    Console().print(table)


if __name__ == "__main__":
    main()
