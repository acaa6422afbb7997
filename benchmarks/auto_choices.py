"""The measurements behind the automatic runtime choices on this machine: per backbone at its native size,
inference images/s with PyTorch contiguous, PyTorch channels_last and ONNX Runtime, and training images/s
(forward, backward, AdamW step) contiguous and channels_last.

The table in RESULTS.md is what `runtime.py` (CHANNELS_LAST_SLOWER) and `embed/backends.py` (ONNX_SLOWER)
encode. Usage: python benchmarks/auto_choices.py [--backbones mobilenet iresnet18 ...] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from facecli.embed.backends import OnnxEmbedder
from facecli.embed.onnx_export import export_onnx
from facecli.models import create_model, default_config

CASES = [("mobilenet", None), ("inception_resnetv1", None), ("iresnet18", None), ("iresnet50", None),
         ("vgg16", None), ("timm/resnet10t", 32), ("timm/resnet10t", 112)]  # fmt: skip


def rate(fn, batch: int, repeats: int) -> float:  # noqa: ANN001
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return batch / statistics.median(times)


def measure(backbone: str, size: int | None, batch: int, repeats: int, work: Path) -> dict[str, float]:
    config = default_config(backbone, 128, size)
    model = create_model(config).eval()
    x = torch.randn(batch, 3, *config.input_size)
    found = {}
    with torch.inference_mode():
        found["infer contiguous"] = rate(lambda: model(x), batch, repeats)
        last = create_model(config).eval().to(memory_format=torch.channels_last)
        x_last = x.contiguous(memory_format=torch.channels_last)
        found["infer channels_last"] = rate(lambda: last(x_last), batch, repeats)
    path = work / f"{backbone.replace('/', '_')}_{size}.onnx"
    export_onnx(model, model, path)
    onnx = OnnxEmbedder(path)
    found["infer onnxruntime"] = rate(lambda: onnx.run(x.numpy()), batch, repeats)
    for name, memory in (("train contiguous", torch.contiguous_format), ("train channels_last", torch.channels_last)):
        found[name] = rate(training_step(config, x, memory), batch, repeats)
    return found


def training_step(config, x: torch.Tensor, memory: torch.memory_format):  # noqa: ANN001, ANN201
    """One forward, backward and AdamW step of a fresh model in `memory` format, as a callable."""
    net = create_model(config).train().to(memory_format=memory)
    optimizer = torch.optim.AdamW(net.parameters(), 1e-3)
    x = x.contiguous(memory_format=memory)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        net.features(x).square().mean().backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", help="Only these (default: every case).")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cases = [c for c in CASES if not args.backbones or c[0] in args.backbones]
    table = Table(title=f"images/s at batch {args.batch_size}, {torch.get_num_threads()} torch threads")
    columns = [
        "infer contiguous",
        "infer channels_last",
        "infer onnxruntime",
        "train contiguous",
        "train channels_last",
    ]
    for column in ["backbone", *columns]:
        table.add_column(column, justify="left" if column == "backbone" else "right")
    with tempfile.TemporaryDirectory() as tmp:
        for backbone, size in cases:
            found = measure(backbone, size, args.batch_size, args.repeats, Path(tmp))
            label = f"{backbone} {size or default_config(backbone).input_size[0]}px"
            table.add_row(label, *(f"{found[c]:.1f}" for c in columns))
            Console(width=160).print(label, {k: round(v, 1) for k, v in found.items()})
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
