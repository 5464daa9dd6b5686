"""The unit of work on the real Postgres: one commit with its events and inbox claims, or none."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest.models import inbox, outbox
from shared.events import DATASET_CREATED, DatasetCreatedV1, Envelope
from shared.uow import UnitsOfWork


def units(sessions: async_sessionmaker[AsyncSession]) -> UnitsOfWork:
    return UnitsOfWork(
        sessions, outbox=outbox, inbox=inbox, source="/conveyor/test", consumer="test-consumer"
    )


def created() -> DatasetCreatedV1:
    return DatasetCreatedV1(dataset_id=uuid.uuid4(), slug="cars", name="Cars", created_by="alice")


def incoming() -> Envelope:
    return Envelope(
        id=str(uuid.uuid4()),
        source="/test",
        type=DATASET_CREATED.name,
        time=datetime.now(UTC),
        data=created().model_dump(mode="json"),
    )


async def count(sessions: async_sessionmaker[AsyncSession], table: object) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]


async def test_emitted_events_reach_the_outbox_with_their_type_source_and_key(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    payload = created()
    async with units(sessions).begin() as uow:
        uow.emit(payload, subject=str(payload.dataset_id), actor="alice")
    async with sessions() as session:
        row = (await session.execute(select(outbox))).one()
    assert row.topic == DATASET_CREATED.topic.name
    assert row.key == str(payload.dataset_id)
    assert row.envelope["type"] == DATASET_CREATED.name
    assert row.envelope["source"] == "/conveyor/test"
    assert row.envelope["actor"] == "alice"
    assert row.envelope["data"]["slug"] == "cars"


async def test_a_failure_inside_the_block_leaves_no_event_and_no_claim(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(RuntimeError):
        async with units(sessions).begin() as uow:
            assert await uow.claim(incoming())
            uow.emit(created(), subject="s", actor="alice")
            await uow.flush_events()
            raise RuntimeError("boom")
    assert await count(sessions, outbox) == 0
    assert await count(sessions, inbox) == 0


async def test_an_event_is_claimed_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    event = incoming()
    uow_factory = units(sessions)
    async with uow_factory.begin() as uow:
        assert await uow.claim(event)
    async with uow_factory.begin() as uow:
        assert not await uow.claim(event)
        assert await uow.claim_all([event, (other := incoming())]) == {other.id}
    assert await uow_factory.applied([event, other, incoming()]) == {event.id, other.id}


async def test_a_deterministic_event_id_is_staged_once_however_often_it_is_emitted(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    payload = created()
    for _ in range(2):
        async with units(sessions).begin() as uow:
            uow.emit(payload, subject="s", actor="alice", event_id="fixed-id")
    assert await count(sessions, outbox) == 1
