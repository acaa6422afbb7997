"""`facecli serve`: the API under uvicorn, on one process or several sharing one gallery.

The model and gallery are opened before the port is bound, so a wrong model file or a gallery of another model
is one error line, not a server that answers 500s. The port is bound here (port 0: a free one) and said in one
line, so a caller knows where to connect.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import socket
from pathlib import Path

from facecli.console import console
from facecli.errors import FaceCliError
from facecli.fileio import check_writable
from facecli.numbers import Bound, check_number
from facecli.serving.service import FaceService, ServeSettings
from facecli.serving.store import check_gallery_place
from facecli.serving.transfer import export_index as write_index

SETTINGS_VARIABLE, KEYS_VARIABLE = "FACECLI_SERVE", "FACECLI_SERVE_KEYS"
MAX_WORKERS = 64


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    settings: ServeSettings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    api_key_file: str | os.PathLike[str] | None = None,
    insecure: bool = False,
    export_index: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> None:
    """Serve until interrupted (SIGINT or SIGTERM: requests in flight finish, the gallery's index is saved);
    with `export_index`, write the gallery as a facecli index file instead, and return."""
    import uvicorn

    from facecli.serving.auth import ApiKeys

    check_number("--port", port, Bound(0, 65535, integer=True))
    check_number("--workers", workers, Bound(1, MAX_WORKERS, integer=True))
    check_number("--max-batch", settings.max_batch, Bound(1, 1024, integer=True))
    check_number("--max-wait-ms", settings.max_wait_ms, Bound(0, 1000))
    if api_key_file is None and not is_loopback(host) and not insecure:
        raise FaceCliError(
            f"--host {host} reaches beyond this machine: pass --api-key-file, or --insecure to serve it without keys"
        )
    keys = ApiKeys.read(api_key_file) if api_key_file is not None else None
    check_gallery_place(settings.gallery)
    if export_index is not None:
        check_writable(export_index, force=force, inputs=(settings.checkpoint,))
    service = FaceService(settings)  # a bad model or gallery fails here, in one line
    if export_index is not None:
        try:
            faces = write_index(service.require_gallery(), export_index, settings.checkpoint, settings.flip, force)
        finally:
            service.close()
        console.print(f"wrote {faces} faces of {settings.gallery} to {export_index}", highlight=False)
        return
    if workers > 1:
        service.close()  # each worker opens its own
    config = uvicorn.Config(
        _app_of(service, keys) if workers == 1 else "facecli.serving.server:app_from_environment",
        host=host, port=port, workers=workers, factory=workers > 1, log_level="info",
        timeout_graceful_shutdown=30,
    )  # fmt: skip
    sock = _bound(config, host, port)
    where = f"http://{host if ':' not in host else f'[{host}]'}:{sock.getsockname()[1]}"
    console.print(f"serving {settings.checkpoint} on {where} (API docs at {where}/docs)", highlight=False)
    if workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
        return
    from uvicorn.supervisors import Multiprocess

    os.environ[SETTINGS_VARIABLE] = json.dumps(_as_json(settings))
    if api_key_file is not None:
        os.environ[KEYS_VARIABLE] = str(Path(api_key_file).resolve())
    Multiprocess(config, sockets=[sock]).run()


def _bound(config, host: str, port: int) -> socket.socket:  # noqa: ANN001 - a uvicorn Config
    try:
        sock = config.bind_socket()
    except SystemExit:  # uvicorn logs why and exits
        raise FaceCliError(f"cannot listen on {host}:{port} (in use, or not an address of this machine)") from None
    # connections inherit it: asyncio sets TCP_NODELAY itself only on sockets it opens, and without it every
    # answer on a kept-alive connection waits ~40 ms for the client's delayed ACK (measured: /healthz 44 ms -> 1 ms)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _app_of(service: FaceService, keys):  # noqa: ANN001, ANN202
    from facecli.serving.app import create_app

    return create_app(service, keys)


def _as_json(settings: ServeSettings) -> dict:
    data = dataclasses.asdict(settings)
    runtime = settings.runtime
    data["checkpoint"] = str(Path(settings.checkpoint).resolve())
    data["runtime"] = {"device": str(runtime.device), "precision": runtime.precision,
                       "channels_last": runtime.channels_last, "compile": runtime.compile}  # fmt: skip
    return data


def app_from_environment():  # noqa: ANN201 - a FastAPI app
    """A worker process's app (uvicorn's factory): the settings `serve` put in the environment."""
    from facecli.runtime import resolve_runtime
    from facecli.serving.auth import ApiKeys

    data = json.loads(os.environ[SETTINGS_VARIABLE])
    data["checkpoint"] = Path(data["checkpoint"])
    data["runtime"] = resolve_runtime(**data.pop("runtime"))
    keys = ApiKeys.read(os.environ[KEYS_VARIABLE]) if os.environ.get(KEYS_VARIABLE) else None
    return _app_of(FaceService(ServeSettings(**data)), keys)
