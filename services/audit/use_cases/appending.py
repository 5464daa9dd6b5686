"""Filing consumed events in the hash chain."""

from __future__ import annotations

from collections.abc import Sequence

from services.audit import repository as repo
from services.audit.context import Audit
from services.audit.domain import extend_chain
from shared.routing import Delivered


async def append_events(audit: Audit, deliveries: Sequence[Delivered]) -> None:
    """Append a poll's events, whatever their type (even one newer than this code), in one commit.

    The chain head row is locked for the transaction, so any number of audit consumers append
    one after the other and the chain stays a single line. Events already in the log
    (redeliveries) are skipped.
    """
    topics = {d.envelope.id: d.topic for d in deliveries}
    async with audit.units.begin() as uow:
        head = await repo.lock_head(uow.session)
        known = await repo.recorded_ids(uow.session, list(topics))
        records = extend_chain(head.seq, head.hash, [d.envelope for d in deliveries], known)
        if records:
            await repo.insert_records(uow.session, records, topics)
            await repo.advance_head(uow.session, records[-1].seq, records[-1].hash)
