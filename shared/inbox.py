"""The inbox: ids of events a consumer has already applied, written in the handler's transaction."""

from __future__ import annotations

from collections.abc import Sequence

from alembic.operations import Operations
from sqlalchemy import ARRAY, Column, DateTime, MetaData, String, Table, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession


def inbox_table(metadata: MetaData) -> Table:
    """The ``inbox`` table in the schema of ``metadata``."""
    return Table(
        "inbox",
        metadata,
        Column("event_id", String(64), primary_key=True),
        Column("consumer", String(100), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def create_inbox(op: Operations, schema: str) -> None:
    """Migration step creating the inbox table."""
    op.create_table(
        "inbox",
        Column("event_id", String(64), primary_key=True),
        Column("consumer", String(100), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        schema=schema,
    )


async def claim(session: AsyncSession, inbox: Table, event_id: str, consumer: str) -> bool:
    """Record that ``consumer`` applies ``event_id``; False if it already did.

    Must run inside the transaction that applies the event's effects, so the record and
    the effects commit or vanish together.
    """
    result = await session.execute(
        insert(inbox)
        .values(event_id=event_id, consumer=consumer)
        .on_conflict_do_nothing()
        .returning(inbox.c.event_id)
    )
    return result.first() is not None


async def claim_many(
    session: AsyncSession, inbox: Table, event_ids: Sequence[str], consumer: str
) -> set[str]:
    """:func:`claim` for many events in one statement: the ids not applied before.

    The ids travel as one array parameter (``unnest``), so the statement is the same for any
    number of them: compiled once, prepared once.
    """
    if not event_ids:
        return set()
    ids = func.unnest(bindparam("event_ids", type_=ARRAY(String(64))))
    statement = (
        insert(inbox)
        .from_select(
            ["event_id", "consumer"], select(ids, bindparam("consumer", type_=String(100)))
        )
        .on_conflict_do_nothing()
        .returning(inbox.c.event_id)
    )
    result = await session.execute(statement, {"event_ids": list(event_ids), "consumer": consumer})
    return {row[0] for row in result}


async def applied(
    session: AsyncSession, inbox: Table, event_ids: Sequence[str], consumer: str
) -> set[str]:
    """Which of ``event_ids`` ``consumer`` has already applied (a read; claims nothing)."""
    if not event_ids:
        return set()
    query = select(inbox.c.event_id).where(
        inbox.c.consumer == consumer, inbox.c.event_id.in_(event_ids)
    )
    return set((await session.execute(query)).scalars())
