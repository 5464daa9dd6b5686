"""Fixtures for in-process use-case tests on the real Postgres.

The use cases of a service run in the test process against a database of their own
(``conveyor_usecases``, migrated once per session). Each test gets sessions bound to one
connection whose outer transaction is rolled back at the end: a use case's own commit only
releases a savepoint, so tests cannot see each other's rows and need no clean-up.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from deploy.sandbox import KAFKA, recreate_database
from services.ingest.context import SOURCE, Ingest
from services.ingest.models import inbox, outbox
from services.ingest.settings import IngestSettings
from services.labeling_dispatch import context as labeling_context
from services.labeling_dispatch import models as labeling_models
from services.labeling_dispatch.settings import LabelingSettings
from services.qc import context as qc_context
from services.qc import models as qc_models
from services.qc.settings import QcSettings
from shared import endpoints
from shared.db import migrate
from shared.storage import ObjectStore
from shared.uow import UnitsOfWork

ROOT = Path(__file__).resolve().parent.parent.parent
USECASE_DB = "conveyor_usecases"
USECASE_DB_URL = endpoints.postgres_url(USECASE_DB, driver="asyncpg")
# schema -> the service package whose migrations create it
SCHEMAS = {
    "ingest": "ingest",
    "clean": "clean",
    "audit": "audit",
    "labeling": "labeling_dispatch",
    "qc": "qc",
}


@pytest.fixture(scope="session")
async def usecase_engine(stack: None) -> AsyncIterator[AsyncEngine]:
    """An engine on a freshly migrated database holding every service's schema."""
    await recreate_database(USECASE_DB)
    for schema, package in SCHEMAS.items():
        await migrate(ROOT / "services" / package / "migrations", USECASE_DB_URL, schema)
    engine = create_async_engine(USECASE_DB_URL, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sessions(usecase_engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions whose every commit is undone when the test ends."""
    async with usecase_engine.connect() as connection:
        outer = await connection.begin()
        yield async_sessionmaker(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        await outer.rollback()


@pytest.fixture
async def ingest(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Ingest]:
    """Ingest's context over the rolled-back sessions and the local object store."""
    settings = IngestSettings(consumer_group="test-ingest-use-cases")
    store = ObjectStore(settings)
    await store.ensure_buckets()
    units = UnitsOfWork(
        sessions, outbox=outbox, inbox=inbox, source=SOURCE, consumer=settings.consumer_group
    )
    yield Ingest(settings, units, store)


@pytest.fixture
async def labeling(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[labeling_context.Labeling]:
    """Labeling-dispatch's context over the rolled-back sessions."""
    settings = LabelingSettings(consumer_group="test-labeling-use-cases")
    units = UnitsOfWork(
        sessions,
        outbox=labeling_models.outbox,
        inbox=labeling_models.inbox,
        source=labeling_context.SOURCE,
        consumer=settings.consumer_group,
    )
    async with httpx.AsyncClient() as http:
        yield labeling_context.Labeling(settings, units, ObjectStore(settings), http)


@pytest.fixture
async def qc(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[qc_context.Qc]:
    """QC's context over the rolled-back sessions and the local object store."""
    settings = QcSettings(consumer_group="test-qc-use-cases")
    units = UnitsOfWork(
        sessions,
        outbox=qc_models.outbox,
        inbox=qc_models.inbox,
        source=qc_context.SOURCE,
        consumer=settings.consumer_group,
    )
    store = ObjectStore(settings)
    await store.ensure_buckets()
    yield qc_context.Qc(settings, units, store)


def kafka_topic(prefix: str, partitions: int) -> Iterator[str]:
    """A fresh topic on the real Kafka for one test, deleted after it (for a fixture to
    ``yield from``). ``prefix`` must not start with ``conveyor.``: no service reads it."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"

    async def admin(create: bool) -> None:
        client = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
        await client.start()
        try:
            if create:
                await client.create_topics([NewTopic(name, partitions, 1)])
            else:
                await client.delete_topics([name])
        finally:
            await client.close()

    asyncio.run(admin(create=True))
    yield name
    asyncio.run(admin(create=False))
