"""Outages of Postgres or the object store become 503 + Retry-After, never 500 or a hang."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError, IntegrityError

from shared.db import is_unavailable
from shared.errors import ApiError
from shared.http import create_app
from shared.kafka import is_transient
from shared.settings import ServiceSettings
from shared.storage import PUT_ATTEMPTS, ObjectStore, StoreUnavailable


def translated(error: Exception) -> DBAPIError:
    """What SQLAlchemy's asyncpg dialect raises for an asyncpg error it has no mapping for."""
    wrapped = DBAPIError("SELECT 1", None, error)
    wrapped.__cause__ = error
    return wrapped


@pytest.mark.parametrize(
    "error",
    [
        translated(asyncpg.exceptions.CannotConnectNowError("the database system is starting up")),
        translated(asyncpg.exceptions.AdminShutdownError("terminating connection")),
        translated(asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")),
        translated(asyncpg.exceptions.TooManyConnectionsError("too many clients")),
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
        StoreUnavailable("object store unavailable"),
    ],
    ids=lambda e: type(e.__cause__ or e).__name__,
)
def test_an_unreachable_dependency_is_an_outage_not_a_fault_of_the_request(
    error: Exception,
) -> None:
    assert is_unavailable(error)
    assert is_transient(error)  # consumers wait it out instead of dead-lettering


@pytest.mark.parametrize(
    "error",
    [
        IntegrityError("INSERT", None, asyncpg.exceptions.UniqueViolationError("duplicate key")),
        translated(asyncpg.exceptions.UndefinedTableError("no such table")),
        ValueError("bad"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_fault_of_the_statement_or_the_code_is_not_an_outage(error: Exception) -> None:
    assert not is_unavailable(error)


@contextlib.asynccontextmanager
async def no_lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


def app_raising(error: Exception) -> FastAPI:
    app = create_app(service="test", title="t", description="d", lifespan=no_lifespan)

    @app.get("/v1/things/{slug}")
    async def thing(slug: str) -> dict[str, str]:
        if slug == "boom":
            raise error
        if slug == "missing":
            raise ApiError(404, "not_found", "no such thing")
        return {"slug": slug}

    return app


async def call(app: FastAPI, url: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(url)


async def test_postgres_starting_up_is_answered_503_with_retry_after() -> None:
    error = translated(asyncpg.exceptions.CannotConnectNowError("the database is starting up"))
    response = await call(app_raising(error), "/v1/things/boom")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"]["code"] == "unavailable"


async def test_an_unexpected_error_is_still_a_500_with_the_error_body() -> None:
    response = await call(app_raising(KeyError("x")), "/v1/things/boom")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"


@pytest.mark.parametrize(
    "url", ["/v1/things/a%00b", "/v1/things/ok?tag=a%00b", "/v1/things/%00", "/v1/things/ok?%00=1"]
)
async def test_a_nul_byte_in_the_url_is_a_400_with_the_error_body(url: str) -> None:
    response = await call(app_raising(ValueError()), url)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "bad_request"


async def test_urls_without_nul_bytes_pass() -> None:
    assert (await call(app_raising(ValueError()), "/v1/things/a%20b?tag=x")).status_code == 200


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel does) but never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


async def test_a_hung_object_store_fails_fast_as_unavailable(silent_server: int) -> None:
    settings = ServiceSettings(
        s3_endpoint=f"127.0.0.1:{silent_server}",
        s3_connect_timeout_seconds=0.5,
        s3_read_timeout_seconds=0.5,
    )
    store = ObjectStore(settings)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await store.stat("conveyor-raw", "sha256/00/00/x")
    # one read timeout, not a retried one (the whole suite would notice a 120 s hang)
    assert time.monotonic() - started < 5
    with pytest.raises(StoreUnavailable):
        list(store.iter_chunks("conveyor-raw", "sha256/00/00/x"))
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):  # a small put: one request, sent by aiohttp
        await store.put_stream("conveyor-raw", "sha256/00/00/x", io.BytesIO(b"x"), 1, "image/png")
    assert time.monotonic() - started < 5
    assert time.monotonic() - started < 2  # one 0.5 s timeout; retried would be 2.1 s or more
    await store.aclose()


async def test_a_put_answered_503_is_retried_then_unavailable() -> None:
    puts: list[str] = []

    class Busy(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            puts.append(self.path)
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        store = ObjectStore(ServiceSettings(s3_endpoint=f"127.0.0.1:{server.server_port}"))
        with pytest.raises(StoreUnavailable, match="503"):
            await store.put_stream("conveyor-raw", "k", io.BytesIO(b"abc"), 3, "image/png")
        await store.aclose()
    finally:
        server.shutdown()
        server.server_close()
    assert len(puts) == PUT_ATTEMPTS
    assert all(p.startswith("/conveyor-raw/k?") and "X-Amz-Signature=" in p for p in puts)


async def test_a_put_to_a_closed_port_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends
    store = ObjectStore(ServiceSettings(s3_endpoint=f"127.0.0.1:{port}"))
    with pytest.raises(StoreUnavailable):
        await store.put_stream("conveyor-raw", "k", io.BytesIO(b"abc"), 3, "image/png")
    await store.aclose()
