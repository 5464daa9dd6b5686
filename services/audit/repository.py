"""All of audit's queries."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Text, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from services.audit.domain import ChainedRecord
from services.audit.models import SCHEMA, AuditRecord, ChainHead


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


# The append path's statements, as text compiled once: built as constructs for every poll,
# each cost SQLAlchemy a compilation or a cache key, about a fifth of audit's time per event.
_LOCK_HEAD = text(
    f"SELECT seq, hash FROM {SCHEMA}.chain_head WHERE id = 1 FOR UPDATE"  # noqa: S608
).columns(seq=BigInteger, hash=Text)
_RECORDED = text(
    f"SELECT event_id FROM {SCHEMA}.audit_records WHERE event_id = ANY(:ids)"  # noqa: S608
).bindparams(bindparam("ids", type_=ARRAY(Text)))
_ADVANCE_HEAD = text(
    f"UPDATE {SCHEMA}.chain_head SET seq = :seq, hash = :hash WHERE id = 1"  # noqa: S608
)
# One row per array element; the payload travels as JSON text.
_RECORD_ARRAYS: dict[str, TypeEngine[Any]] = {
    "seq": BigInteger(),
    "event_id": Text(),
    "type": Text(),
    "subject": Text(),
    "actor": Text(),
    "service": Text(),
    "time": DateTime(timezone=True),
    "trace_id": Text(),
    "topic": Text(),
    "payload": Text(),
    "prev_hash": Text(),
    "hash": Text(),
}
_COLUMNS = ", ".join(_RECORD_ARRAYS)
_VALUES = _COLUMNS.replace("payload", "CAST(payload AS jsonb)")
_ARRAYS = ", ".join(f":{c}" for c in _RECORD_ARRAYS)
_INSERT_RECORDS = text(
    f"INSERT INTO {SCHEMA}.audit_records ({_COLUMNS}) "  # noqa: S608 - our own names
    f"SELECT {_VALUES} FROM unnest({_ARRAYS}) AS rows ({_COLUMNS})"
).bindparams(*(bindparam(c, type_=ARRAY(t)) for c, t in _RECORD_ARRAYS.items()))


@dataclass(frozen=True)
class Head:
    """The chain head: the newest record's seq and hash."""

    seq: int
    hash: str


async def lock_head(session: AsyncSession) -> Head:
    """The chain head, locked until the transaction ends (one appender at a time)."""
    row = (await session.execute(_LOCK_HEAD)).one()
    return Head(row.seq, row.hash)


async def head(session: AsyncSession) -> ChainHead:
    """The chain head, unlocked."""
    return (await session.execute(select(ChainHead).where(ChainHead.id == 1))).scalar_one()


async def advance_head(session: AsyncSession, seq: int, hash_: str) -> None:
    """Move the head to the newest record."""
    await session.execute(_ADVANCE_HEAD, {"seq": seq, "hash": hash_})


async def recorded_ids(session: AsyncSession, event_ids: Sequence[str]) -> set[str]:
    """Which of these events are already in the log."""
    return set((await session.execute(_RECORDED, {"ids": list(event_ids)})).scalars())


async def insert_records(
    session: AsyncSession, records: Sequence[ChainedRecord], topics: Mapping[str, str]
) -> None:
    """Insert chained records (seq, hashes already computed), each with its event's topic."""
    columns: dict[str, list[Any]] = {c: [] for c in _RECORD_ARRAYS}
    for r in records:
        for c in _RECORD_ARRAYS:
            if c == "topic":
                columns[c].append(topics[r.event_id])
            elif c == "payload":
                columns[c].append(json.dumps(r.payload))
            else:
                columns[c].append(getattr(r, c))
    await session.execute(_INSERT_RECORDS, columns)


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
