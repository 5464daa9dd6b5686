"""A request body that stalls is given up with a 408 error body instead of holding the server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

from shared.http import create_app


@contextlib.asynccontextmanager
async def no_lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield


def body_app() -> FastAPI:
    app = create_app(
        service="test",
        title="t",
        description="d",
        lifespan=no_lifespan,
        body_idle_timeout_seconds=0.5,
    )

    @app.post("/v1/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    @app.get("/v1/slow-stream")
    async def slow_stream() -> StreamingResponse:
        async def lines() -> AsyncIterator[bytes]:
            for i in range(3):
                await asyncio.sleep(0.4)  # longer in total than the body idle limit
                yield f"{i}\n".encode()

        return StreamingResponse(lines(), media_type="text/plain")

    return app


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await task


async def exchange(port: int, raw: bytes, wait: float = 5.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(65536), wait)
    finally:
        writer.close()


async def test_a_body_shorter_than_its_content_length_times_out_with_a_408_error_body() -> None:
    async with serving(body_app()) as port:
        head = b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
        answer = await exchange(port, head + b"only ten b")
    status_line, _, rest = answer.partition(b"\r\n")
    assert b" 408 " in status_line
    body = json.loads(rest.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "request_timeout"


async def test_a_complete_body_and_a_long_streamed_answer_are_not_cut() -> None:
    async with serving(body_app()) as port:
        posted = await exchange(
            port, b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        )
        assert b" 200 " in posted.split(b"\r\n", 1)[0]
        assert posted.endswith(b'{"received":5}')
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /v1/slow-stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await writer.drain()
        streamed = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    assert b" 200 " in streamed.split(b"\r\n", 1)[0]
    assert b"0\n" in streamed and b"2\n" in streamed


async def test_a_body_that_keeps_arriving_slowly_is_not_cut() -> None:
    """Each pause is under the idle limit though the whole body takes three times as long."""
    async with serving(body_app()) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n")
        for piece in (b"ab", b"cd", b"ef"):
            await asyncio.sleep(0.3)
            writer.write(piece)
            await writer.drain()
        answer = await asyncio.wait_for(reader.read(65536), 5)
        writer.close()
    assert b" 200 " in answer.split(b"\r\n", 1)[0]
    assert answer.endswith(b'{"received":6}')
