"""The app factory: ``create_app(settings)`` mounts the API routes and the review pages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from review_ui.routes import mount_ui, render_error
from service import queueing, telemetry
from service.api.routes import accounts, claims, collections, otlp, outputs, qc, queues, reviews, stats
from service.errors import ERROR_RESPONSES, ServiceError, error_envelope, validation_details
from service.hygiene import request_problem
from service.settings import Settings
from service.storage.db import engine_for, session_factory

log = logging.getLogger(__name__)

#: Seconds a client is asked to wait when the database cannot be reached.
DB_RETRY_AFTER = 5
HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


class BodyLimit:
    """Buffers the request body, refusing in the error envelope what the API cannot take: a path or
    query string with text that cannot be stored (400, ``service.hygiene``), a body sent to the API
    as anything but JSON (415; OTLP ingest also takes protobuf), a body over the limit, declared or
    streamed (413), and a form body with text that cannot be stored (400). JSON bodies are checked
    by their models, item by item."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"").decode("latin-1")
        if problem := request_problem(raw_path.decode("latin-1"), query, None):
            await _refuse(scope, receive, send, 400, "bad_request", problem)
            return
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if (
            body
            and scope["path"].startswith("/v1/")
            and not (media == b"application/json" or media.endswith(b"+json"))
            and not (scope["path"].startswith("/v1/otlp/") and media == b"application/x-protobuf")
        ):
            message_415 = "the API takes JSON: send Content-Type: application/json"
            details = {"content_type": media.decode("latin-1") or None}
            await _refuse(scope, receive, send, 415, "unsupported_media_type", message_415, details)
            return
        if media == b"application/x-www-form-urlencoded" and (problem := request_problem("", "", body)):
            await _refuse(scope, receive, send, 400, "bad_request", problem)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body is larger than {self.max_bytes} bytes"
        await _refuse(
            scope, receive, send, 413, "payload_too_large", message, {"max_body_bytes": self.max_bytes}
        )


async def _refuse(
    scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str, details: Any = None
) -> None:
    """Answer in the error envelope before the request reaches the app."""
    await JSONResponse(error_envelope(code, message, details), status_code=status)(scope, receive, send)


#: Pages run only the vendored scripts and style sheet; nothing may frame them. FastAPI's own /docs
#: and /redoc pages bootstrap with inline script, so they get every header but the CSP.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]
UNRESTRICTED_PAGES = ("/docs", "/redoc")


class SecurityHeaders:
    """Content-Security-Policy (no inline script), frame-ancestors 'none', nosniff and a referrer
    policy on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(SECURITY_HEADERS)
        if not scope["path"].startswith(UNRESTRICTED_PAGES):
            extra.append((b"content-security-policy", CSP.encode()))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


class Unexpected:
    """Answers an unexpected exception with the 500 envelope *here*, inside Starlette's outermost
    error middleware, which would otherwise send the same answer and then re-raise: uvicorn then
    closes the connection, and a client's next request on that keep-alive connection is reset."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            log.exception("unexpected error answering %s %s", scope.get("method"), scope.get("path"))
            if started:
                return  # the answer is on its way already; nothing better can be sent
            request = Request(scope, receive)
            response = _error_response(request, 500, error_envelope("internal", "internal server error"))
            await response(scope, receive, send)


class ServerTiming:
    """Adds ``Server-Timing: app;dur=<ms>``: the server's own time to the response head, which
    browsers' dev tools show and ``review-router bench ui`` reads."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - started) * 1000
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", []),
                        (b"server-timing", f"app;dur={ms:.2f}".encode()),
                    ],
                }
            await send(message)

        await self.app(scope, receive, timed)


def _wants_html(request: Request) -> bool:
    """People browsing the pages get error pages; htmx swaps (Accept: */*) count as browsing."""
    browsing = "text/html" in request.headers.get("accept", "") or request.headers.get("hx-request") == "true"
    return request.url.path.startswith("/ui") and browsing


def _error_response(request: Request, status_code: int, envelope: dict[str, Any]) -> Response:
    if _wants_html(request):
        if status_code == 401:
            # A person browsing the pages signs in, then comes back here.
            return RedirectResponse(f"/ui/login?next={quote(request.url.path)}", status_code=303)
        return render_error(request, status_code, envelope["error"])
    return JSONResponse(envelope, status_code=status_code)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> Response:
        response = _error_response(request, exc.status_code, exc.envelope())
        if exc.status_code == 401 and isinstance(response, JSONResponse):
            response.headers["WWW-Authenticate"] = 'Bearer realm="review-router"'
        if isinstance(exc.details, dict) and isinstance(exc.details.get("retry_after"), int):
            response.headers["Retry-After"] = str(exc.details["retry_after"])
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        details = validation_details(exc.errors())
        if any(e["type"] == "json_invalid" for e in details):
            envelope = error_envelope("bad_request", "request body is not valid JSON", details)
            return _error_response(request, 400, envelope)
        return _error_response(request, 422, error_envelope("validation_failed", "invalid request", details))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = HTTP_CODES.get(exc.status_code, "error")
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such resource: {request.method} {request.url.path}"
        response = _error_response(request, exc.status_code, error_envelope(code, message))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def database_unavailable(request: Request, exc: Exception) -> Response:
        # The database cannot be reached (down, restarting, connection dropped): a 503 the client
        # can retry, not a 500. pool_pre_ping replaces dead pooled connections once it is back.
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        envelope = error_envelope(
            "unavailable", "the database is unavailable; try again shortly", {"retry_after": DB_RETRY_AFTER}
        )
        response = _error_response(request, 503, envelope)
        response.headers["Retry-After"] = str(DB_RETRY_AFTER)
        return response


async def _sweep_ticker(app: FastAPI, interval: float) -> None:
    """Every interval, one API process (a Redis lock elects it) enqueues the sweep job."""
    settings: Settings = app.state.settings
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(_tick, settings, interval)
        except Exception as exc:  # keep ticking whatever a single tick ran into
            log.warning("sweep tick failed: %s", exc)


def _tick(settings: Settings, interval: float) -> None:
    connection = queueing.redis_connection(settings)
    if connection.set(f"{settings.rq_queue}:sweep-tick", "1", nx=True, ex=max(1, int(interval))):
        queueing.enqueue_sweep(queueing.work_queue(connection, settings), settings)


def create_app(settings: Settings, *, sweeper: bool = False) -> FastAPI:
    """The review-router ASGI app. With ``sweeper`` it also enqueues the periodic sweep."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_sweep_ticker(app, settings.sweep_interval_seconds)) if sweeper else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        title="review-router",
        version="1",
        summary="Decides which LLM outputs a human should review.",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
    )
    app.state.settings = settings
    telemetry.configure(settings)
    app.state.sessions = session_factory(engine_for(settings))
    app.state.work_queue = None
    _install_error_handlers(app)
    for module in (accounts, outputs, otlp, queues, claims, reviews, qc, stats, collections):
        app.include_router(module.router, prefix="/v1")
    app.include_router(stats.metrics_router)
    mount_ui(app)

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(ServerTiming)
    app.add_middleware(Unexpected)
    app.add_middleware(SecurityHeaders)  # outermost: on every answer, a 500 included
    return app
