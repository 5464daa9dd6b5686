"""The outbox relay on the real Postgres and Kafka: every committed row is published, rows
committed while the relay is busy wait for the busy interval and go out in one round, and a
row committed to an idle relay goes out at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import MetaData, Table, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from shared import endpoints
from shared.kafka import new_producer
from shared.outbox import OutboxRelay, create_outbox, outbox_table
from tests.conftest import KAFKA
from tests.integration.conftest import USECASE_DB, kafka_topic

BUSY = 0.6  # the relay's busy interval in this test, seconds
POLL = 0.3  # its polling fallback: an idle round comes soon after the last busy one


@pytest.fixture
def topic(stack: None) -> Iterator[str]:
    yield from kafka_topic("test-outbox-relay", 1)


@pytest.fixture
async def outbox(usecase_engine: AsyncEngine) -> AsyncIterator[Table]:
    """An outbox table (with its NOTIFY trigger) in a schema of its own, dropped after."""
    schema = f"relay_{uuid.uuid4().hex[:8]}"
    async with usecase_engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.run_sync(
            lambda sync: create_outbox(Operations(MigrationContext.configure(sync)), schema)
        )
    yield outbox_table(MetaData(schema=schema))
    async with usecase_engine.begin() as conn:
        await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


async def commit_row(engine: AsyncEngine, outbox: Table, topic: str, n: int) -> None:
    envelope = {
        "id": f"relay-test-{n}",
        "source": "tests",
        "type": "conveyor.test.unknown.v1",
        "time": datetime.now(UTC).isoformat(),
        "subject": str(n),
        "data": {"n": n},
    }
    async with engine.begin() as conn:
        await conn.execute(
            outbox.insert().values(
                event_id=envelope["id"], topic=topic, key=str(n), envelope=envelope
            )
        )


async def test_busy_rows_gather_and_an_idle_relay_answers_at_once(
    usecase_engine: AsyncEngine, outbox: Table, topic: str
) -> None:
    producer = new_producer(KAFKA)
    await producer.start()
    relay = OutboxRelay(
        schema=str(outbox.schema),
        outbox=outbox,
        sessions=async_sessionmaker(usecase_engine),
        producer=producer,
        listen_dsn=endpoints.postgres_url(USECASE_DB),
        poll_interval=POLL,
        busy_interval=BUSY,
    )
    running = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.5)  # listening
        await commit_row(usecase_engine, outbox, topic, 1)
        await asyncio.sleep(0.2)  # row 1 is out: the relay is busy now
        await commit_row(usecase_engine, outbox, topic, 2)
        await asyncio.sleep(0.1)
        await commit_row(usecase_engine, outbox, topic, 3)
        await asyncio.sleep(BUSY + POLL + 0.5)  # a round without rows: idle again
        await commit_row(usecase_engine, outbox, topic, 4)
        await asyncio.sleep(0.4)
        async with usecase_engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        f'SELECT key, created_at, sent_at FROM "{outbox.schema}".outbox ORDER BY id'
                    )
                )
            ).all()
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await producer.stop()
    sent = {row.key: row.sent_at for row in rows}
    created = {row.key: row.created_at for row in rows}
    assert all(sent.values()), sent
    # Rows 2 and 3 waited for the busy interval after row 1's round, then went in one round
    # (sent_at is the round's transaction time).
    assert sent["2"] == sent["3"]
    assert (sent["2"] - sent["1"]).total_seconds() >= BUSY * 0.9
    # Row 4 found the relay idle: published at once, well within the busy interval.
    assert (sent["4"] - created["4"]).total_seconds() < BUSY / 2

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=KAFKA, auto_offset_reset="earliest")
    await consumer.start()
    try:
        received = await consumer.getmany(timeout_ms=5000)
        values = [json.loads(m.value) for batch in received.values() for m in batch]
    finally:
        await consumer.stop()
    assert sorted(v["n"] for v in values) == [1, 2, 3, 4]
