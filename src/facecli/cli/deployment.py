"""Deployment command: export a model to ONNX or TorchScript, verified against PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facecli.cli.app import DEPLOYMENT, command
from facecli.cli.options import Force, ModelFile
from facecli.console import console


@command("export", DEPLOYMENT)
def export_command(
    checkpoint: ModelFile,
    out: Annotated[Path, typer.Option("--out", help="File to write (model.onnx or model.pt).")],
    fmt: Annotated[str, typer.Option("--format", help="onnx or torchscript.")] = "onnx",
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset version.")] = 17,
    static_batch: Annotated[int | None, typer.Option("--static-batch", min=1, help="Fix the ONNX batch size.")] = None,
    fp16: Annotated[bool, typer.Option("--fp16", help="Half-precision ONNX graph (float32 input and output).")] = False,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="Check the export against PyTorch.")] = True,
    verify_images: Annotated[
        list[Path] | None, typer.Option("--verify-image", help="Face image to check with (repeatable).")
    ] = None,
    force: Force = False,
) -> None:
    """Export to ONNX or TorchScript with preprocessing metadata inside, verified against PyTorch."""
    from facecli.exporting import export

    result = export(
        checkpoint=checkpoint,
        out=out,
        fmt=fmt,  # type: ignore[arg-type]
        opset=opset,
        static_batch=static_batch,
        fp16=fp16,
        verify=verify,
        verify_images=verify_images,
        force=force,
    )
    line = f"wrote {result.path} ({result.format})"
    if result.max_abs_diff is not None:
        line += (
            f"; verified on {result.inputs_checked} inputs: max abs diff {result.max_abs_diff:.2e}, "
            f"min cosine {result.min_cosine:.6f}"
        )
    console.print(line)
