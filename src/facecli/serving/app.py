"""The HTTP API (FastAPI), versioned under /v1, over a FaceService; its OpenAPI schema is at /docs.

Image endpoints take multipart files or base64 JSON; model work runs on the thread pool, so the event loop
keeps accepting requests while the batcher merges them."""

from __future__ import annotations

import logging
import sqlite3
import time
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi import Path as FastApiPath
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from facecli.errors import FaceCliError
from facecli.serving.api_errors import ApiError, bad_request, error_body, not_found
from facecli.serving.auth import ApiKeys
from facecli.serving.metrics import Metrics
from facecli.serving.service import MAX_TOP_K, FaceService, check_subject, not_ready
from facecli.serving.uploads import read_uploads

log = logging.getLogger("facecli.serve")
IMAGES_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
            "application/json": {
                "schema": {"type": "object", "properties": {"images": {"type": "array", "items": {"type": "string"}}}}
            },
        },
    }
}
PAIR_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"type": "object", "required": ["a", "b"], "properties": {
                    "a": {"type": "string", "format": "binary"}, "b": {"type": "string", "format": "binary"}}}
            },
            "application/json": {
                "schema": {"type": "object", "required": ["a", "b"], "properties": {
                    "a": {"type": "string", "description": "base64"}, "b": {"type": "string", "description": "base64"}}}
            },
        },
    }
}  # fmt: skip
Aligned = Annotated[bool, Query(description="The images are face crops: use them as they are, detect nothing.")]
MAX_ID = 2**63 - 1  # face ids are SQLite rowids and Milvus INT64 keys; a larger one failed as a server error
TopK = Annotated[int, Query(ge=1, le=MAX_TOP_K, description="Subjects per face.")]
PAGE, MAX_PAGE = 1000, 10_000  # rows a listing returns by default, and at most
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Rows in this page.")]
Threshold = Annotated[
    float | None, Query(description="Cosine above which a face is a subject's (default: the model's).")
]


class NewSubject(BaseModel):
    subject: str = Field(min_length=1, max_length=200)


class Embeddings(BaseModel):
    embeddings: list[list[float]] = Field(min_length=1, max_length=1024)


def create_app(service: FaceService, keys: ApiKeys | None = None) -> FastAPI:
    """The app serving `service`; with `keys`, every /v1 route and /metrics need one of them."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        yield
        service.close()  # the batchers stop, the gallery's index is saved

    app = FastAPI(
        title="facecli", version="1", description="Face verification and 1:N search with a facecli model.",
        lifespan=lifespan,
    )  # fmt: skip
    metrics = Metrics(service)
    guard = [Depends(keys.check)] if keys else []
    app.include_router(_v1(service), dependencies=guard)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:  # a thread of its own: the gallery check reads the store
        problem = not_ready(service.batchers, service.gallery)
        if problem is not None:
            return JSONResponse(error_body("not_ready", problem), status_code=503)
        return JSONResponse({"status": "ready", "model_hash": service.model_hash})

    @app.get("/metrics", dependencies=guard, include_in_schema=False)
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    app.add_middleware(Measured, metrics=metrics)
    _errors(app)
    return app


class Measured:
    """Counts and times every request by route (a plain ASGI middleware: Starlette's BaseHTTPMiddleware costs a
    task and a stream per request)."""

    def __init__(self, app, metrics: Metrics) -> None:  # noqa: ANN001 - an ASGI app
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]

        async def sending(message) -> None:  # noqa: ANN001
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe(route, scope["method"], status[0], start)


def _errors(app: FastAPI) -> None:
    """Every refusal as `{error: {code, message}}` with its status; anything unexpected as a 500 without a trace."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(FaceCliError)
    async def user_error(request: Request, exc: FaceCliError) -> JSONResponse:
        return JSONResponse(error_body("bad_request", str(exc)), status_code=400)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()[:5]
        )
        return JSONResponse(error_body("invalid_request", problems), status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(sqlite3.Error)
    async def gallery_error(request: Request, exc: sqlite3.Error) -> JSONResponse:
        log.error(f"{request.method} {request.url.path}: the gallery failed: {' '.join(str(exc).split())[:300]}")
        message = f"the gallery could not be read or written ({' '.join(str(exc).split())[:100]}); nothing was changed"
        return JSONResponse(error_body("gallery_unavailable", message), status_code=503)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error(f"{request.method} {request.url.path}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
        return JSONResponse(error_body("internal", "the server failed on this request (logged)"), status_code=500)


def _v1(service: FaceService) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.post("/verify", openapi_extra=PAIR_BODY, summary="Are the faces of a and b the same person?")
    async def verify(request: Request, aligned: Aligned = False, threshold: Threshold = None) -> dict:
        a, b = await read_uploads(request, ("a", "b"))
        return await run_in_threadpool(service.verify, a, b, aligned, threshold)

    @router.post("/embed", openapi_extra=IMAGES_BODY, summary="Every face of every image, with its embedding")
    async def embed(request: Request, aligned: Aligned = False) -> dict:
        uploads = await read_uploads(request)
        return await run_in_threadpool(service.embed, uploads, aligned)

    @router.post(
        "/identify", openapi_extra=IMAGES_BODY, summary="Who is each face? Open set: unknown under the threshold"
    )
    async def identify(
        request: Request, aligned: Aligned = False, top_k: TopK = 5, threshold: Threshold = None
    ) -> dict:
        uploads = await read_uploads(request)
        return await run_in_threadpool(service.identify, uploads, aligned, top_k, threshold)

    @router.post("/identify/embeddings", summary="Who is each embedding? Open set")
    async def identify_embeddings(body: Embeddings, top_k: TopK = 5, threshold: Threshold = None) -> dict:
        return await run_in_threadpool(service.search, body.embeddings, top_k, threshold)

    @router.get("/model", summary="The model: hash, preprocessing, threshold and how it was calibrated")
    async def model() -> dict:
        return service.model_info()

    _gallery_routes(router, service)
    return router


def _gallery_routes(router: APIRouter, service: FaceService) -> None:
    gallery = service.gallery_or_404

    @router.post("/subjects", status_code=201, summary="Create a subject")
    async def add_subject(body: NewSubject) -> dict:
        check_subject(body.subject)
        if not await run_in_threadpool(gallery().add_subject, body.subject):
            raise ApiError(409, "exists", f"subject {body.subject!r} exists already")
        return {"subject": body.subject}

    @router.get("/subjects", summary="Subjects by name with their number of faces, a page at a time")
    async def subjects(after: Annotated[str, Query(description="The last name of the previous page.")] = "",
                       limit: PageSize = PAGE) -> dict:  # fmt: skip
        found = await run_in_threadpool(gallery().subjects, after, limit)
        return {"subjects": [vars(s) for s in found], "next": found[-1].name if len(found) == limit else None}

    @router.get("/subjects/{subject}", summary="One subject")
    async def one_subject(subject: str) -> dict:
        found = await run_in_threadpool(gallery().subject, subject)
        if found is None:
            raise not_found(f"no subject {subject!r}")
        return vars(found)

    @router.delete("/subjects/{subject}", summary="Forget a subject: its faces and embeddings, everywhere")
    async def delete_subject(subject: str) -> dict:
        removed = await run_in_threadpool(gallery().delete_subject, subject)
        if removed is None:
            raise not_found(f"no subject {subject!r}")
        return {"subject": subject, "faces_deleted": removed}

    @router.post("/faces", status_code=201, openapi_extra=IMAGES_BODY, summary="Enrol the largest face of an image")
    async def add_face(
        request: Request, subject: Annotated[str, Query(min_length=1)], aligned: Aligned = False
    ) -> dict:
        gallery()
        uploads = await read_uploads(request)
        if len(uploads) != 1:
            raise bad_request(f"enrol one image per request, got {len(uploads)}")
        return await run_in_threadpool(service.enrol, subject, uploads[0], aligned)

    @router.get("/faces", summary="The faces of a subject (or every face) by id, a page at a time")
    async def faces(subject: str | None = None,
                    after: Annotated[int, Query(ge=0, le=MAX_ID, description="The last id of the previous page.")] = 0,
                    limit: PageSize = PAGE) -> dict:  # fmt: skip
        if subject is not None and await run_in_threadpool(gallery().subject, subject) is None:
            raise not_found(f"no subject {subject!r}")
        found = await run_in_threadpool(gallery().faces, subject, after, limit)
        return {"faces": [vars(f) for f in found], "next": found[-1].id if len(found) == limit else None}

    @router.delete("/faces/{face_id}", summary="Forget one face")
    async def delete_face(face_id: Annotated[int, FastApiPath(ge=1, le=MAX_ID)]) -> dict:
        if not await run_in_threadpool(gallery().delete_face, face_id):
            raise not_found(f"no face {face_id}")
        return {"face_id": face_id, "deleted": True}
