"""The principal cache of clean and audit: bounded, brief for unknown keys, coalesced lookups."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from shared.auth import RemotePrincipalResolver, generate_api_key, looks_like_api_key
from shared.errors import ApiError


class FakeIngest:
    """Stands in for ingest's /v1/auth/me: knows some keys, counts calls and their overlap."""

    def __init__(self, known: dict[str, str], delay: float = 0.0, status: int | None = None):
        self.known = known
        self.delay = delay
        self.status = status
        self.calls = 0
        self.in_flight = 0
        self.most_in_flight = 0

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        if self.status is not None:
            return httpx.Response(self.status)
        key = request.headers["X-API-Key"]
        if key not in self.known:
            return httpx.Response(401, json={"error": {"code": "invalid_api_key"}})
        body = {"key_id": self.known[key], "name": "alice", "role": "viewer"}
        return httpx.Response(200, json=body)


def resolver(ingest: FakeIngest, **options: float) -> RemotePrincipalResolver:
    transport = httpx.MockTransport(ingest.handle)
    return RemotePrincipalResolver("http://ingest", transport=transport, **options)  # type: ignore[arg-type]


async def test_a_key_that_cannot_be_a_conveyor_key_is_refused_without_asking_ingest() -> None:
    ingest = FakeIngest({})
    cache = resolver(ingest)
    for forged in ["", "x", "cvk_short", "cvk_" + "a" * 44, "abc_" + "a" * 43, "cvk_" + "é" * 43]:
        assert await cache.resolve(forged) is None
    assert ingest.calls == 0
    assert looks_like_api_key(generate_api_key())


async def test_a_flood_of_forged_keys_is_bounded_in_memory_and_in_concurrent_calls() -> None:
    ingest = FakeIngest({}, delay=0.01)
    cache = resolver(ingest, max_entries=50, max_concurrent_lookups=4)
    forged = [generate_api_key() for _ in range(300)]
    assert await asyncio.gather(*(cache.resolve(k) for k in forged)) == [None] * 300
    assert cache.cached == 50
    assert ingest.most_in_flight <= 4


async def test_the_same_key_asked_at_once_costs_one_call() -> None:
    key = generate_api_key()
    ingest = FakeIngest({key: "k1"}, delay=0.05)
    cache = resolver(ingest)
    principals = await asyncio.gather(*(cache.resolve(key) for _ in range(40)))
    assert {p.key_id for p in principals if p} == {"k1"}
    assert ingest.calls == 1


async def test_an_unknown_key_is_remembered_briefly_a_known_one_longer() -> None:
    known, unknown = generate_api_key(), generate_api_key()
    ingest = FakeIngest({known: "k1"})
    cache = resolver(ingest, ttl_seconds=30, negative_ttl_seconds=0.05)
    for _ in range(3):
        await cache.resolve(known)
        await cache.resolve(unknown)
    assert ingest.calls == 2
    await asyncio.sleep(0.06)
    await cache.resolve(unknown)
    await cache.resolve(known)
    assert ingest.calls == 3  # only the unknown key was asked again


async def test_a_revoked_key_is_forgotten_at_once() -> None:
    key = generate_api_key()
    ingest = FakeIngest({key: "k1"})
    cache = resolver(ingest)
    assert await cache.resolve(key) is not None
    assert cache.forget_key("k1") == 1
    del ingest.known[key]
    assert await cache.resolve(key) is None


async def test_ingest_failing_is_a_503_and_not_cached() -> None:
    key = generate_api_key()
    ingest = FakeIngest({key: "k1"}, status=500)
    cache = resolver(ingest)
    with pytest.raises(ApiError) as caught:
        await cache.resolve(key)
    assert caught.value.status == 503
    ingest.status = None
    assert await cache.resolve(key) is not None
