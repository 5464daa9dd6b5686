"""Audit's use cases: append an event to the chain, query it, verify it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.audit import repository as repo
from services.audit.domain import (
    GENESIS_HASH,
    ChainedRecord,
    canonical_json,
    chain_hash,
    trace_id_of,
    verify_chain,
)
from services.audit.models import AuditRecord
from services.audit.schemas import BrokenRecord, RecordOut, RecordPage, VerifyResult
from shared.errors import ApiError
from shared.events import Envelope

VERIFY_BATCH = 5000


def record_out(record: AuditRecord) -> RecordOut:
    """The API form of a record."""
    return RecordOut.model_validate(record, from_attributes=True)


class Audit:
    """The audit service's application layer."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def append(self, events: Sequence[tuple[Envelope, str]]) -> int:
        """Append (event, topic) pairs to the chain in one transaction; return how many were new.

        The chain head row is locked for the transaction, so any number of audit consumers
        append one after the other and the chain stays a single line. Events already in the
        log (redeliveries) are skipped.
        """
        async with self.sessions() as session, session.begin():
            head = await repo.lock_head(session)
            known = await repo.recorded_ids(session, [e.id for e, _ in events])
            seq, prev_hash = head.seq, head.hash
            rows = []
            for envelope, topic in events:
                if envelope.id in known:
                    continue
                known.add(envelope.id)
                seq += 1
                fields: dict[str, Any] = {
                    "seq": seq,
                    "event_id": envelope.id,
                    "type": envelope.type,
                    "subject": envelope.subject,
                    "actor": envelope.actor,
                    "service": envelope.source,
                    "time": envelope.time,
                    "trace_id": trace_id_of(envelope.traceparent),
                    "payload": envelope.data,
                }
                digest = chain_hash(prev_hash, canonical_json(**fields))
                rows.append({**fields, "topic": topic, "prev_hash": prev_hash, "hash": digest})
                prev_hash = digest
            if rows:
                await repo.insert_records(session, rows)
                await repo.advance_head(session, seq, prev_hash)
        return len(rows)

    async def find(self, flt: repo.RecordFilter, limit: int, cursor: str | None) -> RecordPage:
        """A page of records matching ``flt``."""
        after = _decode_cursor(cursor)
        async with self.sessions() as session:
            rows = await repo.find(session, flt, after_seq=after, limit=limit + 1)
        items = [record_out(r) for r in rows[:limit]]
        next_cursor = str(rows[limit - 1].seq) if len(rows) > limit else None
        return RecordPage(items=items, next_cursor=next_cursor)

    async def timeline(self, asset_id: str) -> list[RecordOut]:
        """Every record about one asset, in order."""
        items: list[RecordOut] = []
        after = 0
        async with self.sessions() as session:
            while True:
                rows = await repo.find(
                    session, repo.RecordFilter(subject=asset_id), after_seq=after, limit=1000
                )
                items.extend(record_out(r) for r in rows)
                if len(rows) < 1000:
                    return items
                after = rows[-1].seq

    async def export(self, flt: repo.RecordFilter) -> AsyncIterator[bytes]:
        """Matching records as JSON lines, streamed in batches."""
        after = 0
        while True:
            async with self.sessions() as session:
                rows = await repo.find(session, flt, after_seq=after, limit=1000)
            for r in rows:
                yield (record_out(r).model_dump_json() + "\n").encode()
            if len(rows) < 1000:
                return
            after = rows[-1].seq

    async def verify(self) -> VerifyResult:
        """Recompute the whole chain; name the first record that does not fit."""
        prev_hash, next_seq, checked, after = GENESIS_HASH, 1, 0, 0
        async with self.sessions() as session:
            # Records up to the head seen now are committed; later appends are not checked.
            last = (await repo.head(session)).seq
            while True:
                batch = await repo.find(
                    session, repo.RecordFilter(), after_seq=after, limit=VERIFY_BATCH
                )
                rows = [r for r in batch if r.seq <= last]
                chained = [
                    ChainedRecord(
                        seq=r.seq,
                        event_id=r.event_id,
                        type=r.type,
                        subject=r.subject,
                        actor=r.actor,
                        service=r.service,
                        time=r.time,
                        trace_id=r.trace_id,
                        payload=r.payload,
                        prev_hash=r.prev_hash,
                        hash=r.hash,
                    )
                    for r in rows
                ]
                n, broken, prev_hash, next_seq = verify_chain(chained, prev_hash, next_seq)
                checked += n
                if broken is not None:
                    return VerifyResult(
                        ok=False,
                        records_checked=checked,
                        first_broken=BrokenRecord(
                            seq=broken.seq, event_id=broken.event_id, reason=broken.reason
                        ),
                    )
                if len(rows) < VERIFY_BATCH:
                    if last != next_seq - 1:
                        return VerifyResult(
                            ok=False,
                            records_checked=checked,
                            first_broken=BrokenRecord(
                                seq=next_seq,
                                event_id=None,
                                reason=f"chain head is at {last} but the log ends at "
                                f"{next_seq - 1}: records were removed from the end",
                            ),
                        )
                    return VerifyResult(ok=True, records_checked=checked, first_broken=None)
                after = rows[-1].seq


def _decode_cursor(cursor: str | None) -> int:
    if cursor is None:
        return 0
    try:
        value = int(cursor)
    except ValueError as exc:
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned") from exc
    if value < 0:
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned")
    return value
