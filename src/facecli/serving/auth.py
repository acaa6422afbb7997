"""API keys: `x-api-key: KEY` or `Authorization: Bearer KEY`, checked against a key file in constant time.

The key file holds one key per line (blank lines and `#` comments ignored). A key is never logged: uvicorn's
access log shows the method, path and query only, and a refusal names no key.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path

from fastapi import Request

from facecli.errors import FaceCliError
from facecli.serving.api_errors import ApiError

MIN_KEY_CHARS = 16


class ApiKeys:
    """The keys of a key file; `check` is the FastAPI dependency that refuses a request without one."""

    def __init__(self, keys: list[bytes]) -> None:
        self.keys = keys

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> ApiKeys:
        path = Path(path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise FaceCliError(f"{path}: cannot read the API key file ({type(exc).__name__})") from None
        keys = []
        for number, line in enumerate(lines, 1):
            key = line.strip()
            if not key or key.startswith("#"):
                continue
            if len(key) < MIN_KEY_CHARS or any(c.isspace() for c in key):
                raise FaceCliError(
                    f"{path}:{number}: an API key is one word of at least {MIN_KEY_CHARS} characters "
                    "(make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
                )
            keys.append(key.encode())
        if not keys:
            raise FaceCliError(f"{path}: no API key in the file (one per line)")
        return cls(keys)

    def accepts(self, given: str | None) -> bool:
        """Whether `given` is one of the keys; every key is compared, each in constant time."""
        if not given:
            return False
        candidate = given.encode()
        found = False
        for key in self.keys:
            found |= hmac.compare_digest(candidate, key)
        return found

    async def check(self, request: Request) -> None:
        given = request.headers.get("x-api-key")
        if given is None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            given = token.strip() if scheme.lower() == "bearer" else None
        if not self.accepts(given):
            raise ApiError(401, "unauthorized", "a valid API key is needed (x-api-key or Authorization: Bearer)")
