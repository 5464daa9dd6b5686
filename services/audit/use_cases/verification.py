"""Recomputing the chain."""

from __future__ import annotations

from services.audit import repository as repo
from services.audit.context import Audit
from services.audit.domain import GENESIS_HASH, ChainedRecord, verify_chain
from services.audit.schemas import BrokenRecord, VerifyResult

# Records checked per query: bounds memory however long the log is.
VERIFY_BATCH = 5000


async def verify_log(audit: Audit) -> VerifyResult:
    """Recompute the whole chain; name the first record that does not fit."""
    prev_hash, next_seq, checked, after = GENESIS_HASH, 1, 0, 0
    async with audit.units.read() as session:
        # Records up to the head seen now are committed; later appends are not checked.
        last = (await repo.head(session)).seq
        while True:
            batch = await repo.find(
                session, repo.RecordFilter(), after_seq=after, limit=VERIFY_BATCH
            )
            rows = [ChainedRecord.of(r) for r in batch if r.seq <= last]
            n, broken, prev_hash, next_seq = verify_chain(rows, prev_hash, next_seq)
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
