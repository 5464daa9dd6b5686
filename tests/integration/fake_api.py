"""A fake HTTP API for CLI tests: error bodies shaped like the services', and a local server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response


class ApiFailure(Exception):
    """Raise in a fake endpoint to answer with the services' error body."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        self.status, self.code, self.message, self.details = status, code, message, details


def fake_app(record: Callable[[str, str], None]) -> FastAPI:
    """An app that answers ApiFailure like the services and calls ``record(method, path)`` for
    every request."""
    app = FastAPI()

    @app.exception_handler(ApiFailure)
    async def _failure(request: Request, exc: ApiFailure) -> JSONResponse:
        body = {"error": {"code": exc.code, "message": exc.message, "details": exc.details}}
        return JSONResponse(body, status_code=exc.status)

    @app.middleware("http")
    async def _record(request: Request, call_next: Any) -> Response:
        record(request.method, request.url.path)
        response: Response = await call_next(request)
        return response

    return app


class LocalServer:
    """uvicorn serving ``app`` on a free 127.0.0.1 port, in a background thread."""

    def __init__(self, app: FastAPI) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="none")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> LocalServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("local test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
