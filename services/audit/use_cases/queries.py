"""Reading the log: search, an asset's timeline, export."""

from __future__ import annotations

from collections.abc import AsyncIterator

from services.audit import repository as repo
from services.audit.context import Audit
from services.audit.models import AuditRecord
from services.audit.schemas import RecordOut, RecordPage
from shared.errors import ApiError

# Rows per query when a reader wants everything that matches.
BATCH = 1000


async def find_records(
    audit: Audit, flt: repo.RecordFilter, limit: int, cursor: str | None
) -> RecordPage:
    """A page of records matching ``flt``, in chain order."""
    after = _decode_cursor(cursor)
    async with audit.units.read() as session:
        rows = await repo.find(session, flt, after_seq=after, limit=limit + 1)
    items = [record_out(r) for r in rows[:limit]]
    next_cursor = str(rows[limit - 1].seq) if len(rows) > limit else None
    return RecordPage(items=items, next_cursor=next_cursor)


async def asset_timeline(
    audit: Audit, asset_id: str, datasets: frozenset[str] | None = None
) -> list[RecordOut]:
    """Every record about one asset, in order (of the ``datasets`` given, if any)."""
    items: list[RecordOut] = []
    after = 0
    flt = repo.RecordFilter(subject=asset_id, datasets=datasets)
    async with audit.units.read() as session:
        while True:
            rows = await repo.find(session, flt, after_seq=after, limit=BATCH)
            items.extend(record_out(r) for r in rows)
            if len(rows) < BATCH:
                return items
            after = rows[-1].seq


async def export_records(audit: Audit, flt: repo.RecordFilter) -> AsyncIterator[bytes]:
    """Matching records as JSON lines; a session per batch, none held while the client reads."""
    after = 0
    while True:
        async with audit.units.read() as session:
            rows = await repo.find(session, flt, after_seq=after, limit=BATCH)
        for r in rows:
            yield (record_out(r).model_dump_json() + "\n").encode()
        if len(rows) < BATCH:
            return
        after = rows[-1].seq


def record_out(record: AuditRecord) -> RecordOut:
    """The API form of a record."""
    return RecordOut.model_validate(record, from_attributes=True)


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
