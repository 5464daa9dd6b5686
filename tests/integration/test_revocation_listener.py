"""A revoked key stops working in every process within a second (real Kafka)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime

import httpx

from deploy.sandbox import KAFKA
from shared.auth import RemotePrincipalResolver, RevocationListener, generate_api_key
from shared.events import (
    ALL_TOPICS,
    API_KEY_REVOKED,
    INGEST_EVENTS,
    ApiKeyRevokedV1,
    Envelope,
)
from shared.kafka import encode, ensure_topics, new_producer


async def test_each_listener_drops_the_revoked_key_from_its_own_cache_within_a_second(
    stack: None,
) -> None:
    await ensure_topics(KAFKA, ALL_TOPICS)
    key, key_id = generate_api_key(), str(uuid.uuid4())
    known = {key: key_id}

    async def me(request: httpx.Request) -> httpx.Response:
        if request.headers["X-API-Key"] not in known:
            return httpx.Response(401)
        return httpx.Response(200, json={"key_id": key_id, "name": "bob", "role": "viewer"})

    # Two processes' worth of caches: a consumer group would tell only one of them.
    caches = [
        RemotePrincipalResolver("http://ingest", transport=httpx.MockTransport(me))
        for _ in range(2)
    ]
    listeners = [RevocationListener(cache, KAFKA) for cache in caches]
    tasks = [asyncio.create_task(listener.run()) for listener in listeners]
    producer = new_producer(KAFKA)
    await producer.start()
    try:
        await asyncio.wait_for(asyncio.gather(*(x.listening.wait() for x in listeners)), 30)
        for cache in caches:
            assert await cache.resolve(key) is not None
        del known[key]  # revoked in ingest's table...
        revoked = Envelope(
            id=str(uuid.uuid4()),
            source="/conveyor/ingest",
            type=API_KEY_REVOKED.name,
            time=datetime.now(UTC),
            subject=key_id,
            actor="admin",
            data=ApiKeyRevokedV1(key_id=uuid.UUID(key_id), revoked_by="admin").model_dump(
                mode="json"
            ),
        )
        value, headers = encode(revoked)
        sent = time.monotonic()
        await producer.send_and_wait(
            INGEST_EVENTS.name, value=value, key=key_id.encode(), headers=headers
        )
        # ...and announced: every cache forgets it, long before its 30 s time-to-live
        while any([await cache.resolve(key) is not None for cache in caches]):
            assert time.monotonic() - sent < 1.0, "a cache still accepts the revoked key"
            await asyncio.sleep(0.02)
    finally:
        await producer.stop()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for cache in caches:
            await cache.close()
