"""The FastAPI application shell every service shares: errors, health, readiness, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, BeforeValidator, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.db import is_unavailable
from shared.errors import ApiError, ErrorBody
from shared.metrics import HTTP_LATENCY, HTTP_REQUESTS
from shared.runtime import settled_heap


def _iso_only(value: object) -> object:
    """Only an ISO 8601 time: pydantic would also read a number (``0.5``) as epoch seconds."""
    if isinstance(value, str) and not re.match(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("not an ISO 8601 date-time")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only)]
"""A date-time query parameter as the OpenAPI document says it is: ISO 8601 only."""

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[None]]

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
}


def create_app(
    *,
    service: str,
    title: str,
    description: str,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    max_body_bytes: int = 1024 * 1024,
    body_idle_timeout_seconds: float = 60.0,
) -> FastAPI:
    """A FastAPI app with Conveyor's error bodies, /healthz, /readyz, /metrics and tracing.

    Readiness checks are registered at start-up in ``app.state.readiness`` as
    ``{name: async check}``; /readyz runs them all.
    """
    # FastAPI's own telemetry is off: the server span is :class:`_RequestShell`'s (one span per
    # request; FastAPI's adds three more per request, for dependencies, endpoint and output).
    app = FastAPI(
        title=title,
        description=description,
        version=_version(),
        lifespan=_settled(lifespan),
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.readiness = {}

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        err = ApiError(exc.status_code, code, str(exc.detail))
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names the methods of the first route matching the path only.
            headers["Allow"] = _allowed_methods(app, request.scope)
        return JSONResponse(err.body(), status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        err = ApiError(422, "validation_error", "request is invalid", {"errors": errors})
        return JSONResponse(err.body(), status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Postgres starting or stopping, a refused connection, a hung object store (they
        # arrive as several unrelated types): the request was fine, the dependency was not.
        if is_unavailable(exc):
            log.warning("dependency unavailable: %s", exc)
            err = ApiError(503, "unavailable", "a dependency is unavailable; retry shortly")
            return JSONResponse(err.body(), status_code=503, headers={"Retry-After": "5"})
        log.exception("unhandled error")
        err = ApiError(500, "internal_error", "unexpected server error; see the service log")
        return JSONResponse(err.body(), status_code=500)

    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service, "version": app.version}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness: Postgres, Kafka and the object store are reachable",
        responses={
            200: {"model": Readiness},
            503: {"model": Readiness, "description": "a dependency is unreachable"},
        },
    )
    async def readyz() -> JSONResponse:
        results: dict[str, str] = {}
        for name, check in app.state.readiness.items():
            try:
                await check()
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"error: {exc}"
        ready = bool(results) and all(v == "ok" for v in results.values())
        body = {"status": "ready" if ready else "not_ready", "checks": results}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(
        _RequestShell,
        service=service,
        max_bytes=max_body_bytes,
        idle_seconds=body_idle_timeout_seconds,
    )
    _document_shell_answers(app)
    return app


def _settled(
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """``lifespan``, with the garbage collector tuned once start-up is done (see
    :func:`~shared.runtime.settled_heap`)."""

    @contextlib.asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        async with lifespan(app):
            with settled_heap():
                yield

    return run


def _version() -> str:
    """The installed ``conveyor`` distribution's version (what /healthz reports)."""
    try:
        return importlib.metadata.version("conveyor")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree never installed
        return "0.0.0+unknown"


def _allowed_methods(app: FastAPI, scope: Scope) -> str:
    """The Allow header of a 405 (RFC 9110): the methods of every route on the path."""
    return ", ".join(
        method
        for method in ("DELETE", "GET", "PATCH", "POST", "PUT")
        if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in app.routes)
    )


class Readiness(BaseModel):
    """What /readyz answers: ``ready`` only when every check says ``ok``."""

    status: str = Field(description="ready | not_ready")
    checks: dict[str, str] = Field(description="check name -> ok | error: <why>")


_SHELL_PATHS = ("/healthz", "/readyz", "/metrics")
_RETRY_AFTER = {"description": "seconds to wait", "schema": {"type": "string"}}
_SHELL_ERRORS = {
    400: "the URL holds a NUL byte, or the body cannot be read",
    408: "the request body stalled",
    413: "the request body is over the size limit",
    422: "the request does not fit the operation's parameters or body",
    503: "a dependency (Postgres, Kafka, the object store, ingest) is unavailable; retry",
}


def _document_shell_answers(app: FastAPI) -> None:
    """Declares in the OpenAPI document what the shell answers for every route.

    A NUL byte in the URL (400) and an oversized body (413) are refused before routing;
    a body is read by the shell (400 unreadable, 408 stalled); FastAPI's own 422 schema is
    replaced by the error body the shell really sends; an operation behind a key or a
    database can meet an outage (503). Routes declare only their own statuses.
    """
    build_document = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build_document()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, schema in {**error_schema.pop("$defs", {}), "ErrorBody": error_schema}.items():
            schemas.setdefault(name, schema)
        error_ref = {"$ref": "#/components/schemas/ErrorBody"}
        for path, item in document.get("paths", {}).items():
            for operation in item.values():
                responses = operation.setdefault("responses", {})
                shell = [400, 413]
                if "requestBody" in operation:
                    shell += [408, 422]
                if operation.get("parameters"):
                    shell.append(422)
                for status in shell if path in _SHELL_PATHS else [*shell, 503]:
                    entry = responses.setdefault(
                        str(status), {"description": _SHELL_ERRORS[status]}
                    )
                    entry["content"] = {"application/json": {"schema": error_ref}}
                    if status == 503:
                        entry["headers"] = {"Retry-After": _RETRY_AFTER}
        if "HTTPValidationError" not in str(document.get("paths")):
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


_TRACE_HEADERS = (b"traceparent", b"tracestate", b"baggage")
_tracer = trace.get_tracer("conveyor.http")


class _RequestShell:
    """What the shell does around every request, as one plain ASGI middleware (four nested
    ones cost each request a call and a ``send`` wrapper apiece):

    - **a server span** per request (not /healthz, /readyz, /metrics), continuing the
      caller's trace from its ``traceparent`` header. Named ``METHOD /route/{template}`` and
      carrying the HTTP attributes OpenTelemetry's ASGI instrumentation sets (method, route,
      target, status code, scheme, flavor, peer, user agent), read straight from the ASGI
      scope, without matching the routes a second time;
    - **request metrics**: a count and a duration per route and status;
    - **no NUL byte in the URL**: a 400 error body. No identifier, slug, tag or filter of
      Conveyor can hold one, and Postgres text cannot store one: without this check such a
      request reaches the database and fails there;
    - **a body limit** (see :class:`_BodyWatch`).
    """

    def __init__(self, app: ASGIApp, service: str, max_bytes: int, idle_seconds: float) -> None:
        self.app = app
        self.service = service
        self.max_bytes = max_bytes
        self.idle_seconds = idle_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method: str = scope["method"]
        status = 500
        with (
            contextlib.nullcontext()
            if scope["path"] in _SHELL_PATHS
            else _tracer.start_as_current_span(
                method,
                context=_caller_context(scope),
                kind=SpanKind.SERVER,
                attributes=_span_attributes(scope, method),
            )
        ) as span:

            async def send_status(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    if span is not None:
                        span.set_attribute("http.status_code", status)
                        if status >= 500:
                            span.set_status(Status(StatusCode.ERROR))
                await send(message)

            watch = _BodyWatch(receive, self.max_bytes, self.idle_seconds)
            try:
                refusal = self._refusal(scope)
                if refusal is not None:
                    await JSONResponse(refusal.body(), refusal.status)(scope, receive, send_status)
                else:
                    await self.app(scope, watch.receive, send_status)
            finally:
                watch.close()
                route = getattr(scope.get("route"), "path", None)
                if span is not None and route is not None:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                path = route or "unmatched"
                HTTP_REQUESTS.labels(self.service, method, path, str(status)).inc()
                HTTP_LATENCY.labels(self.service, method, path).observe(
                    time.perf_counter() - started
                )

    def _refusal(self, scope: Scope) -> ApiError | None:
        """The error refusing the request before it is routed, if there is one."""
        if (
            "\x00" in scope["path"]
            or b"%00" in scope["query_string"]
            or b"\x00" in scope["query_string"]
        ):
            return ApiError(400, "bad_request", "the URL contains a NUL byte (%00)")
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.isdigit() and int(value) > self.max_bytes:
                    return ApiError(413, "payload_too_large", _too_large(self.max_bytes))
                break
        return None


def _too_large(max_bytes: int) -> str:
    """The message of a 413, whether the declared length or the bytes counted passed the limit."""
    return f"request body is larger than {max_bytes} bytes"


def _caller_context(scope: Scope) -> Context | None:
    """The trace context the caller sent in its headers, if any."""
    carrier = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
        if name in _TRACE_HEADERS
    }
    return propagate.extract(carrier) if carrier else None


def _span_attributes(scope: Scope, method: str) -> dict[str, str | int]:
    query = scope["query_string"]
    attributes: dict[str, str | int] = {
        "http.method": method,
        "http.scheme": scope.get("scheme", "http"),
        "http.flavor": scope.get("http_version", "1.1"),
        "http.target": scope["path"] + ("?" + query.decode("latin-1") if query else ""),
    }
    for name, value in scope["headers"]:
        if name == b"user-agent":
            attributes["http.user_agent"] = value.decode("latin-1")
            break
    if client := scope.get("client"):
        attributes["net.peer.ip"], attributes["net.peer.port"] = client[0], client[1]
    return attributes


class _BodyWatch:
    """A request's ``receive``, refusing a body over ``max_bytes`` (413) or one that stalls (408).

    A declared Content-Length over the limit is refused before anything is read (by
    :class:`_RequestShell`); a chunked body is counted as it streams in and cut off at the
    limit, before the rest is spooled to disk. A body that sends nothing for
    ``idle_seconds`` (a stalled upload, or a Content-Length larger than what is sent) is given
    up, so it cannot hold a connection and a spool file forever.

    One timer per request watches for the stall (not a timeout per body chunk): each read
    only notes when it started waiting, and the timer, when it fires, cancels a read that has
    waited ``idle_seconds``, or sets itself again for the rest of that time.
    """

    def __init__(self, receive: Receive, max_bytes: int, idle_seconds: float) -> None:
        self._receive = receive
        self._max_bytes = max_bytes
        self._idle = idle_seconds
        self._received = 0
        self._done = False  # the whole body is in: later reads wait for a disconnect
        self._waiting: tuple[asyncio.Task[Any], float] | None = None  # the read, since when
        self._timer: asyncio.TimerHandle | None = None
        self._stalled = False

    async def receive(self) -> Message:
        if self._done:
            return await self._receive()
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None:
            self._waiting = (task, loop.time())
            if self._timer is None:
                self._timer = loop.call_later(self._idle, self._check)
        try:
            event = await self._receive()
        except asyncio.CancelledError:
            if self._stalled and task is not None and task.uncancel() == 0:
                raise StarletteHTTPException(
                    408, f"no request body bytes arrived for {self._idle:g} s"
                ) from None
            raise
        finally:
            self._waiting = None
        self._done = event["type"] != "http.request" or not event.get("more_body", False)
        if event["type"] == "http.request":
            self._received += len(event.get("body", b""))
            if self._received > self._max_bytes:
                raise StarletteHTTPException(413, _too_large(self._max_bytes))
        return event

    def _check(self) -> None:
        self._timer = None
        if self._waiting is None:
            return  # not reading now: the next read sets the timer again
        task, since = self._waiting
        loop = asyncio.get_running_loop()
        left = since + self._idle - loop.time()
        if left > 0:
            self._timer = loop.call_later(left, self._check)
        else:
            self._stalled = True
            task.cancel()

    def close(self) -> None:
        """Stop watching (the request is over)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
