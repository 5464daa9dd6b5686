"""The webhook vendor edge: what one try sends, and how each kind of answer is reported."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from services.labeling_dispatch.domain.signatures import SignatureCheck, verify
from services.labeling_dispatch.vendor_edges.base import Outbound, VendorTarget
from services.labeling_dispatch.vendor_edges.webhook import USER_AGENT, WebhookEdge

VENDOR = VendorTarget(uuid.uuid4(), "webhook", "https://vendor.example/in", "s3cret")
DELIVERY = Outbound(uuid.uuid4(), b'{"tasks":[]}')
NOW = 1_760_000_000


def _edge(
    handler: httpx.MockTransport, timeout: float = 1.0
) -> tuple[WebhookEdge, httpx.AsyncClient]:
    client = httpx.AsyncClient(transport=handler)
    return WebhookEdge(client, timeout, clock=lambda: NOW), client


async def test_a_try_posts_the_stored_bytes_signed_with_the_vendor_secret() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202)

    edge, client = _edge(httpx.MockTransport(answer))
    async with client:
        outcome = await edge.send(VENDOR, DELIVERY)
    assert outcome.status_code == 202 and outcome.error is None and outcome.latency_ms >= 0
    request = seen[0]
    assert request.method == "POST" and str(request.url) == VENDOR.url
    assert request.content == DELIVERY.body
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["Conveyor-Delivery"] == str(DELIVERY.delivery_id)
    check = verify(
        "s3cret", request.headers["Conveyor-Signature"], DELIVERY.body, now=NOW, tolerance=300
    )
    assert check is SignatureCheck.ok


async def test_a_redirect_is_an_answer_not_followed() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"Location": "https://elsewhere.example/"})

    edge, client = _edge(httpx.MockTransport(answer))
    async with client:
        outcome = await edge.send(VENDOR, DELIVERY)
    assert outcome.status_code == 301 and outcome.error == "HTTP 301"


async def test_a_refusal_keeps_a_short_excerpt_and_the_retry_hint() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "7"}, content=b"x" * 10_000)

    edge, client = _edge(httpx.MockTransport(answer))
    async with client:
        outcome = await edge.send(VENDOR, DELIVERY)
    assert outcome.status_code == 503 and outcome.retry_after == "7"
    assert outcome.excerpt is not None and len(outcome.excerpt) == 256


async def test_no_answer_in_time_is_a_timeout_without_status() -> None:
    async def answer(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    edge, client = _edge(httpx.MockTransport(answer), timeout=0.1)
    async with client:
        outcome = await edge.send(VENDOR, DELIVERY)
    assert outcome.status_code is None and outcome.error is not None
    assert "timeout" in outcome.error and outcome.latency_ms < 2000


async def test_a_connection_error_is_an_outcome_not_an_exception() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    edge, client = _edge(httpx.MockTransport(answer))
    async with client:
        outcome = await edge.send(VENDOR, DELIVERY)
    assert outcome.status_code is None and outcome.error == "ConnectError: refused"
