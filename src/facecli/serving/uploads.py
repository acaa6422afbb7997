"""Images a request carries: multipart files, or base64 strings in JSON. Never a path on the server or a URL:
a server that opens what a client names reads its own files for anyone, and fetches from its own network."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

import numpy as np

from facecli.data.images import ImageError, decode
from facecli.serving.api_errors import ApiError, bad_request, unprocessable

MAX_REQUEST_BYTES = 32 << 20  # a request body: a few phone photos
MAX_IMAGE_BYTES = 16 << 20  # one image's bytes (decoded images are also held to data.images.MAX_PIXELS)
MAX_IMAGES = 64  # images in one request


@dataclass
class Upload:
    name: str  # the client's file name or JSON key, for messages and answers
    data: bytes

    def image(self) -> np.ndarray:
        """Decoded uint8 RGB, upright; a 422 naming the image when it is not a usable image."""
        if len(self.data) > MAX_IMAGE_BYTES:
            raise ApiError(413, "too_large", f"{self.name}: {len(self.data)} bytes, over {MAX_IMAGE_BYTES} per image")
        try:
            return decode(self.data)
        except ImageError as exc:
            raise unprocessable("bad_image", f"{self.name}: {exc}") from None


async def read_uploads(request, names: tuple[str, ...] | None = None) -> list[Upload]:  # noqa: ANN001 - a Request
    """The images of a request: multipart files (every file field, or the fields `names`), or JSON
    `{"images": [base64, ...]}` / `{name: base64}` for `names`; in the order given."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        uploads = await _multipart(request, names)
    elif kind == "application/json":
        uploads = _from_json(await _body(request), names)
    else:
        raise ApiError(415, "unsupported_media_type", "send images as multipart/form-data files or base64 in JSON")
    if not uploads:
        raise bad_request(f"no image in the request (expected {' and '.join(names) if names else 'images'})")
    if len(uploads) > MAX_IMAGES:
        raise ApiError(413, "too_large", f"{len(uploads)} images, over {MAX_IMAGES} per request")
    return uploads


async def _body(request) -> bytes:  # noqa: ANN001
    _check_declared_size(request)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            raise ApiError(413, "too_large", f"the request is over {MAX_REQUEST_BYTES} bytes")
    return bytes(body)


def _check_declared_size(request) -> None:  # noqa: ANN001
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise ApiError(413, "too_large", f"the request has {declared} bytes, over {MAX_REQUEST_BYTES}")


def _parsed(body: bytes) -> object:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"the body is not JSON ({exc})") from None


def _from_json(body: bytes, names: tuple[str, ...] | None) -> list[Upload]:
    data = _parsed(body)
    if not isinstance(data, dict):
        raise bad_request("the JSON body must be an object")
    if names:
        missing = [name for name in names if name not in data]
        if missing:
            raise bad_request(f"missing {', '.join(missing)} (base64 images)")
        return [_decoded64(name, data[name]) for name in names]
    images = data.get("images")
    if not isinstance(images, list):
        raise bad_request('expected {"images": [base64, ...]}')
    return [_decoded64(f"images[{n}]", item) for n, item in enumerate(images)]


def _decoded64(name: str, value: object) -> Upload:
    if not isinstance(value, str):
        raise bad_request(f"{name}: expected a base64 string, got {type(value).__name__}")
    if value.startswith("data:") and "," in value:  # a data URL: its payload
        value = value.split(",", 1)[1]
    if len(value) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise ApiError(413, "too_large", f"{name}: over {MAX_IMAGE_BYTES} bytes per image")
    try:
        return Upload(name, base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        raise bad_request(f"{name}: not valid base64") from None


async def _multipart(request, names: tuple[str, ...] | None) -> list[Upload]:  # noqa: ANN001
    _check_declared_size(request)
    try:
        form = await request.form(max_files=MAX_IMAGES + 1, max_part_size=MAX_IMAGE_BYTES)
    except Exception as exc:  # noqa: BLE001 - starlette raises several kinds for a malformed body
        raise bad_request(f"malformed multipart body ({' '.join(str(exc).split())[:200]})") from None
    files = [(key, value) for key, value in form.multi_items() if hasattr(value, "read")]
    if names:
        missing = [name for name in names if name not in dict(files)]
        if missing:
            raise bad_request(f"missing the file field(s) {', '.join(missing)}")
        files = [(name, dict(files)[name]) for name in names]
    uploads = []
    for key, value in files:
        data = await value.read()
        uploads.append(Upload(value.filename or key, data))
    return uploads
