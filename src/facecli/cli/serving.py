"""`facecli serve`: the model behind an HTTP API, with a durable gallery."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facecli.cli.app import DEPLOYMENT, command
from facecli.cli.defaults import library_constant
from facecli.cli.options import Force, ModelFile, RuntimeOptions, model_or_newest

BATCHER = "serving/batcher"


@command("serve", DEPLOYMENT)
def serve_command(
    gallery: Annotated[
        str | None,
        typer.Option(
            "--gallery",
            help="Gallery for /v1/subjects, /v1/faces and /v1/identify: a folder (SQLite + faiss, created when "
            "missing), a Milvus Lite .db file, or milvus://HOST:PORT/COLLECTION.",
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (beyond loopback: keys needed).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: a free one, printed).")] = 8000,
    workers: Annotated[int, typer.Option("--workers", help="Server processes (each loads the model).")] = 1,
    api_key_file: Annotated[
        Path | None, typer.Option("--api-key-file", help="Keys, one per line: requests need x-api-key or Bearer.")
    ] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Serve beyond loopback without API keys.")] = False,
    keep_crops: Annotated[
        bool, typer.Option("--keep-crops", help="Store each enrolled face's aligned crop (needed by --reembed).")
    ] = False,
    reembed: Annotated[
        bool, typer.Option("--reembed", help="A gallery of another model: embed its stored crops with this one.")
    ] = False,
    import_index: Annotated[
        Path | None,
        typer.Option("--import-index", help="Enrol a facecli index file's faces (subjects already there: skipped)."),
    ] = None,
    export_index: Annotated[
        Path | None, typer.Option("--export-index", help="Write the gallery as a facecli index file, then exit.")
    ] = None,
    max_batch: Annotated[
        int | None,
        typer.Option(
            "--max-batch",
            help=f"Faces merged into one forward pass (default: {library_constant(BATCHER, 'MAX_BATCH')}, "
            "measured; 1: no batching).",
        ),
    ] = None,
    max_wait_ms: Annotated[
        float | None,
        typer.Option(
            "--max-wait-ms",
            help=f"How long a batch waits for more faces (default: {library_constant(BATCHER, 'MAX_WAIT_MS')}).",
        ),
    ] = None,
    flip: Annotated[bool, typer.Option("--flip", help="Add the mirrored face's embedding (as galleries built so).")] = (
        False
    ),
    backend: Annotated[
        str | None, typer.Option("--backend", help="auto (ONNX Runtime on CPUs where faster), torch, or onnx.")
    ] = None,
    align_template: Annotated[
        str | None, typer.Option("--align-template", help="facenet or arcface (default: arcface for 112 px models).")
    ] = None,
    runtime: RuntimeOptions = RuntimeOptions(),  # noqa: B008  (expanded into options by `command`)
    checkpoint: ModelFile = None,
    force: Force = False,
) -> None:
    """Serve the model over HTTP: verify, embed, a gallery of subjects, open-set identify (docs at /docs)."""
    from facecli.embed.backends import check_backend
    from facecli.serving import ServeSettings, serve
    from facecli.serving.batcher import MAX_BATCH, MAX_WAIT_MS

    settings = ServeSettings(
        checkpoint=model_or_newest(checkpoint), runtime=runtime.resolve(), backend=check_backend(backend or "auto"),
        gallery=gallery, flip=flip, template=align_template, keep_crops=keep_crops, reembed=reembed,
        import_index=import_index,
        max_batch=MAX_BATCH if max_batch is None else max_batch,
        max_wait_ms=MAX_WAIT_MS if max_wait_ms is None else max_wait_ms,
    )  # fmt: skip
    serve(
        settings, host=host, port=port, workers=workers, api_key_file=api_key_file, insecure=insecure,
        export_index=export_index, force=force,
    )  # fmt: skip
