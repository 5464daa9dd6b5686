"""All of audit's queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.audit.models import AuditRecord, ChainHead


@dataclass(frozen=True)
class RecordFilter:
    """Query filters; None means any."""

    subject: str | None = None
    actor: str | None = None
    type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    # Only records about these datasets (ids, from ``payload.dataset_id``); None: all records.
    datasets: frozenset[str] | None = None


async def lock_head(session: AsyncSession) -> ChainHead:
    """The chain head, locked until the transaction ends (one appender at a time)."""
    query = select(ChainHead).where(ChainHead.id == 1).with_for_update()
    return (await session.execute(query)).scalar_one()


async def head(session: AsyncSession) -> ChainHead:
    """The chain head, unlocked."""
    return (await session.execute(select(ChainHead).where(ChainHead.id == 1))).scalar_one()


async def advance_head(session: AsyncSession, seq: int, hash_: str) -> None:
    """Move the head to the newest record."""
    await session.execute(update(ChainHead).where(ChainHead.id == 1).values(seq=seq, hash=hash_))


async def recorded_ids(session: AsyncSession, event_ids: Sequence[str]) -> set[str]:
    """Which of these events are already in the log."""
    query = select(AuditRecord.event_id).where(AuditRecord.event_id.in_(list(event_ids)))
    return set((await session.execute(query)).scalars().all())


async def insert_records(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert chained records (seq, hashes already computed)."""
    await session.execute(insert(AuditRecord), rows)


async def find(
    session: AsyncSession, flt: RecordFilter, *, after_seq: int, limit: int
) -> Sequence[AuditRecord]:
    """Records matching the filter, in seq order, after ``after_seq``."""
    query = (
        select(AuditRecord)
        .where(AuditRecord.seq > after_seq)
        .order_by(AuditRecord.seq)
        .limit(limit)
    )
    if flt.subject is not None:
        query = query.where(AuditRecord.subject == flt.subject)
    if flt.actor is not None:
        query = query.where(AuditRecord.actor == flt.actor)
    if flt.type is not None:
        query = query.where(AuditRecord.type == flt.type)
    if flt.since is not None:
        query = query.where(AuditRecord.time >= flt.since)
    if flt.until is not None:
        query = query.where(AuditRecord.time < flt.until)
    if flt.datasets is not None:
        # a record without a dataset (keys, dead letters, drops) is not for a limited key
        query = query.where(AuditRecord.payload["dataset_id"].astext.in_(sorted(flt.datasets)))
    return (await session.execute(query)).scalars().all()
