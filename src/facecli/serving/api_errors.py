"""What the server answers when a request cannot be served: a status and a JSON body `{error: {code, message}}`,
never a traceback."""

from __future__ import annotations


class ApiError(Exception):
    """A request the server refuses, with its HTTP status and a stable machine-readable code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict:
        return error_body(self.code, self.message)


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def bad_request(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def unprocessable(code: str, message: str) -> ApiError:
    return ApiError(422, code, message)
