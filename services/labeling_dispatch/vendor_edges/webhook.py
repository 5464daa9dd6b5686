"""Webhook vendors: a batch is POSTed to the vendor's URL, signed afresh at every try.

Annotations come back on Conveyor's own signed vendor webhook.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx

from services.labeling_dispatch.domain.signatures import DELIVERY_HEADER, SIGNATURE_HEADER, sign
from services.labeling_dispatch.vendor_edges.base import (
    Outbound,
    SendOutcome,
    VendorTarget,
)

USER_AGENT = "Conveyor-Labeling-Dispatch/1"
# Enough of a vendor's answer to tell people what it said, not enough to store a page.
EXCERPT_BYTES = 256


class WebhookEdge:
    """Sends deliveries over ``http`` (redirects off, bounded by ``timeout`` seconds)."""

    kind = "webhook"

    def __init__(
        self, http: httpx.AsyncClient, timeout: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._http = http
        self._timeout = timeout
        self._clock = clock

    async def send(self, vendor: VendorTarget, delivery: Outbound) -> SendOutcome:
        """POST the stored bytes once; every failure is an outcome, never an exception."""
        if not vendor.url:
            return SendOutcome(None, 0.0, error="vendor has no URL")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            DELIVERY_HEADER: str(delivery.delivery_id),
            SIGNATURE_HEADER: sign(vendor.secret, delivery.body, int(self._clock())),
        }
        started = time.perf_counter()
        try:
            # httpx bounds each phase; this bounds the whole try (a vendor trickling bytes)
            async with asyncio.timeout(self._timeout):
                async with self._http.stream(
                    "POST",
                    vendor.url,
                    content=delivery.body,
                    headers=headers,
                    timeout=self._timeout,
                    follow_redirects=False,
                ) as response:
                    excerpt = await _excerpt(response)
        except TimeoutError:
            return SendOutcome(None, _since(started), error="timeout (no answer in time)")
        except httpx.HTTPError as exc:
            return SendOutcome(None, _since(started), error=_describe(exc))
        latency = _since(started)
        ok = 200 <= response.status_code < 300
        return SendOutcome(
            response.status_code,
            latency,
            error=None if ok else f"HTTP {response.status_code}",
            retry_after=response.headers.get("Retry-After"),
            excerpt=excerpt or None,
        )


async def _excerpt(response: httpx.Response) -> str:
    """The start of the answer's body; the rest is not read."""
    kept = b""
    async for chunk in response.aiter_bytes():
        kept += chunk
        if len(kept) >= EXCERPT_BYTES:
            break
    return kept[:EXCERPT_BYTES].decode("utf-8", "replace")


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _describe(exc: httpx.HTTPError) -> str:
    """A short, stable description of why no answer came."""
    if isinstance(exc, httpx.TimeoutException):
        return f"timeout ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"[:500]
