"""What the recipe assumes on CUDA, measured: training images/s of the planned configurations with
channels_last and torch.compile on and off, a one-GPU DDP run against the same run in one process, and
ONNX Runtime's CUDA provider against PyTorch for inference. Run by benchmarks/gpu_check.sh (at most
8 minutes on one H100); prints a table and writes the figures as JSON.
Usage: python benchmarks/gpu_check.py --out gpu_check.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from facecli.losses.options import build_loss
from facecli.models import create_model, default_config
from facecli.runtime import resolve_runtime
from facecli.training.optim import build_optimizer
from facecli.training.precision import precision_for
from facecli.training.probe import probe_labels, seconds_per_step
from facecli.training.step import TrainStep

# the configurations the recipe plans on a GPU: the published one at scale, and the FaceNet ports' pairing
PLANNED = [("iresnet50", 112, 128, "arcface", "bf16"), ("mobilenet", 160, 128, "triplet", "bf16")]
VARIANTS = [("plain", False, False), ("channels_last", True, False), ("compile", False, True),
            ("channels_last + compile", True, True)]  # fmt: skip


def train_rate(
    backbone: str, side: int, batch: int, loss: str, precision: str, channels_last: bool, compiled: bool
) -> float:
    """Training images/s of one optimizer step of the configuration on random batches (the recipe's probe)."""
    torch.manual_seed(0)
    model = create_model(default_config(backbone, 512, side, 0.0, loss=loss, num_classes=1000))
    runtime = resolve_runtime("cuda", precision, channels_last, compiled)
    step = TrainStep(model, build_loss(loss, 512, 1000, {}), compiled)  # compiles the embedding, as train does
    net = dataclasses.replace(runtime, compile=False).prepare(step)
    precision_ = precision_for(runtime)
    optimizer = build_optimizer(net, "sgd", 0.1, 5e-4, momentum=0.9, scaled=precision_.scales)
    labels = probe_labels(batch, 4 if loss == "triplet" else None, 1000)
    return batch / seconds_per_step(net, optimizer, precision_, model.config.preprocessing, labels, side)


def ddp_seconds(work: Path) -> dict[str, float]:
    """Wall seconds of the same short run in one process and under torchrun with one GPU."""
    from facecli.data.synth import synth

    synth(work / "faces", identities=50, images=8, size=64, seed=0)
    common = ["train", "--data", str(work / "faces"), "--backbone", "iresnet18", "--img-size", "64", "--epochs", "3",
              "--device", "cuda"]  # fmt: skip
    seconds = {}
    for name, launcher in (("one process", [sys.executable, "-m", "facecli"]),
                           ("torchrun, 1 GPU", [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "1",
                                                "-m", "facecli"])):  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run([*launcher, *common, "--run-dir", str(work / name.replace(" ", "_"))],
                              capture_output=True, text=True)  # fmt: skip
        seconds[name] = time.perf_counter() - started if done.returncode == 0 else float("nan")
        if done.returncode:
            print(done.stderr[-2000:], file=sys.stderr)
    return seconds


def onnx_cuda(work: Path) -> dict[str, float | str]:
    """Inference images/s of mobilenet at 160 px, batch 64: PyTorch bf16 against ONNX Runtime's CUDA provider."""
    import onnxruntime as ort

    from facecli.embed.onnx_export import export_onnx

    model = create_model("mobilenet").eval()
    x = torch.randn(64, 3, 160, 160)
    runtime = resolve_runtime("cuda", "bf16", True, False)
    net = runtime.prepare(create_model("mobilenet").eval())
    with torch.no_grad(), runtime.autocast():
        for _ in range(5):
            net(runtime.batch(x))
        torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(20):
            net(runtime.batch(x))
        torch.cuda.synchronize()
    result: dict[str, float | str] = {"torch bf16": 20 * 64 / (time.perf_counter() - started)}
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        result["onnxruntime cuda"] = "no CUDAExecutionProvider (install onnxruntime-gpu)"
        return result
    export_onnx(model, model, work / "m.onnx")
    session = ort.InferenceSession(str(work / "m.onnx"), providers=["CUDAExecutionProvider"])
    feed = {session.get_inputs()[0].name: x.numpy()}
    for _ in range(5):
        session.run(None, feed)
    started = time.perf_counter()
    for _ in range(20):
        session.run(None, feed)
    result["onnxruntime cuda"] = 20 * 64 / (time.perf_counter() - started)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device here")
    figures: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "training": {}}
    table = Table(title=f"training images/s on {figures['device']}")
    for column in ("configuration", "plain", "channels_last", "compile", "channels_last + compile"):
        table.add_column(column)
    for backbone, side, batch, loss, precision in PLANNED:
        row = {}
        for name, channels_last, compiled in VARIANTS:
            row[name] = round(train_rate(backbone, side, batch, loss, precision, channels_last, compiled), 1)
        key = f"{backbone} {side}px {loss} {precision} batch {batch}"
        figures["training"][key] = row
        table.add_row(key, *(str(v) for v in row.values()))
    with tempfile.TemporaryDirectory() as tmp:
        figures["ddp seconds"] = ddp_seconds(Path(tmp))
        figures["inference images/s"] = onnx_cuda(Path(tmp))
    Console().print(table)
    Console().print(figures["ddp seconds"], figures["inference images/s"])
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    os.sync()


if __name__ == "__main__":
    main()
