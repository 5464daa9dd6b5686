"""What every service process builds at start-up and tears down at exit.

Engines and clients are created here, inside the app lifespan, never at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from tenacity import AsyncRetrying, stop_after_delay, wait_fixed

from shared.db import create_engine, migrate, ping, session_factory
from shared.events import ALL_TOPICS
from shared.kafka import ensure_topics, new_producer
from shared.outbox import OutboxRelay
from shared.settings import ServiceSettings
from shared.storage import ObjectStore

log = logging.getLogger(__name__)

# Allocations (net of frees) between two collections of the youngest generation; Python's
# default is 700, which a busy service reaches every few milliseconds.
YOUNG_COLLECTION_THRESHOLD = 10_000


@contextlib.contextmanager
def settled_heap() -> Iterator[None]:
    """The cyclic garbage collector tuned for a service that has started, until it stops.

    Everything alive once start-up is done (modules, the app and its routes, engines, ORM
    mappings, schemas) lives as long as the process; ``gc.freeze()`` takes it out of the
    collector's sight, so a full collection walks only what came later. In ingest under load
    a full collection took 165-204 ms, every 4-6 s, and stalled every request in flight; frozen,
    4-13 ms. The youngest generation is collected less often
    (:data:`YOUNG_COLLECTION_THRESHOLD`): most objects a request makes are freed by their
    reference counts before a collection would look at them.

    On exit the heap is unfrozen and the thresholds restored (a test process starts and stops
    many apps; what they leave behind must stay collectable).
    """
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


@dataclass
class Runtime:
    """A service's live connections and background tasks."""

    settings: ServiceSettings
    schema: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    producer: AIOKafkaProducer
    store: ObjectStore
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def spawn(self, name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``run`` in the background for the life of the process, restarting it on crash."""

        async def _supervise() -> None:
            while True:
                try:
                    await run()
                    return
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("background task %s crashed; restarting in 2 s", name)
                    await asyncio.sleep(2)

        self.tasks.append(asyncio.create_task(_supervise(), name=name))

    def start_outbox_relay(self, outbox: Table) -> None:
        """Publish the service's outbox to Kafka in the background."""
        relay = OutboxRelay(
            schema=self.schema,
            outbox=outbox,
            sessions=self.sessions,
            producer=self.producer,
            listen_dsn=self.settings.asyncpg_dsn,
        )
        self.spawn("outbox-relay", relay.run)

    async def check_kafka(self) -> None:
        """Readiness check: the producer can fetch cluster metadata."""
        await asyncio.wait_for(self.producer.client.fetch_all_metadata(), 5)


@contextlib.asynccontextmanager
async def service_runtime(
    settings: ServiceSettings, *, schema: str, migrations_dir: Path
) -> AsyncIterator[Runtime]:
    """Wait for the dependencies, migrate the schema, create topics and buckets, then yield."""
    engine = create_engine(settings)
    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine)
    async for attempt in AsyncRetrying(stop=stop_after_delay(60), wait=wait_fixed(1), reraise=True):
        with attempt:
            await ping(engine)
    await migrate(migrations_dir, settings.database_url, schema)
    async for attempt in AsyncRetrying(stop=stop_after_delay(60), wait=wait_fixed(1), reraise=True):
        with attempt:
            await ensure_topics(settings.kafka_bootstrap_servers, ALL_TOPICS)
    producer = new_producer(settings.kafka_bootstrap_servers)
    await producer.start()
    store = ObjectStore(settings)
    await store.ensure_buckets()
    runtime = Runtime(settings, schema, engine, session_factory(engine), producer, store)
    try:
        yield runtime
    finally:
        for task in runtime.tasks:
            task.cancel()
        for task in runtime.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await producer.stop()
        await store.aclose()
        await engine.dispose()
