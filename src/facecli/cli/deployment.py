"""Deployment command: export a model to ONNX, .pt2 or TorchScript, verified against PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facecli.cli.app import DEPLOYMENT, command
from facecli.cli.defaults import Defaults, given, library_constant
from facecli.cli.options import Force, ModelFile, model_or_newest
from facecli.cli.tables import int8_check_table
from facecli.console import console

EXPORT = Defaults("exporting/exporter", "export")


@command("export", DEPLOYMENT)
def export_command(
    out: Annotated[Path, typer.Option("--out", help="File to write (model.onnx, model.pt2 or model.pt).")],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help=EXPORT("onnx, pt2 (torch.export) or torchscript (deprecated by PyTorch)", "fmt")),
    ] = None,
    opset: Annotated[int | None, typer.Option("--opset", help=EXPORT("ONNX opset version", "opset"))] = None,
    static_batch: Annotated[int | None, typer.Option("--static-batch", min=1, help="Fix the ONNX batch size.")] = None,
    fp16: Annotated[bool, typer.Option("--fp16", help="Half-precision ONNX graph (float32 input and output).")] = False,
    int8: Annotated[
        bool, typer.Option("--int8", help="An int8 ONNX graph for CPUs, calibrated on --calibrate and checked.")
    ] = False,
    calibrate: Annotated[
        Path | None,
        typer.Option("--calibrate", help="Face crops of the model input size (a folder or list) to calibrate on."),
    ] = None,
    verify: Annotated[
        bool | None, typer.Option("--verify/--no-verify", help=EXPORT("Check the export against PyTorch", "verify"))
    ] = None,
    verify_images: Annotated[
        list[Path] | None, typer.Option("--verify-image", help="Face image to check with (repeatable).")
    ] = None,
    check_pairs: Annotated[
        Path | None, typer.Option("--check-pairs", help="With --int8: score these pairs with both models.")
    ] = None,
    root: Annotated[Path | None, typer.Option("--root", help="Folder the check pairs' images are under.")] = None,
    max_drop: Annotated[
        float | None,
        typer.Option(
            "--max-drop",
            help="With --check-pairs: accuracy int8 may lose before the export fails (default: "
            f"{library_constant('exporting/int8', 'MAX_DROP')}).",
        ),
    ] = None,
    checkpoint: ModelFile = None,
    force: Force = False,
) -> None:
    """Export to ONNX, .pt2 or TorchScript (deprecated) with preprocessing metadata inside, verified against
    PyTorch."""
    from facecli.exporting import export
    from facecli.verification.scoring import PairsInput

    checkpoint = model_or_newest(checkpoint)

    result = export(
        checkpoint=checkpoint,
        out=out,
        **given(fmt=fmt, opset=opset, verify=verify),  # type: ignore[arg-type]
        static_batch=static_batch,
        fp16=fp16,
        int8=int8,
        calibrate=calibrate,
        check=None if check_pairs is None else PairsInput(check_pairs, root=root),
        **given(max_drop=max_drop),
        verify_images=verify_images,
        force=force,
    )
    line = f"wrote {result.path} ({result.format}{f', exporter {result.exporter}' if result.exporter else ''})"
    if result.max_abs_diff is not None:
        line += (
            f"; verified on {result.inputs_checked} inputs: max abs diff {result.max_abs_diff:.2e}, "
            f"min cosine {result.min_cosine:.6f}"
        )
    console.print(line)
    if result.note:
        console.print(f"note: {result.note}")
    if result.pairs_check is not None:
        console.print(int8_check_table(result.pairs_check))
