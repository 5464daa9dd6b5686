"""Projecting events into the dashboard's tables.

:data:`APPLIERS` is the dashboard's table of event type -> projection (None: nothing to do).
The consumer hands each partition's poll to :func:`project`, which applies the events not
applied before in one unit of work: inbox claims, projection writes, stage counts, the
funnel's counters and the change counter commit together, so a redelivered event changes
nothing.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from services.dashboard.context import Dashboard
from services.dashboard.domain import funnel
from services.dashboard.repository import projections as repo
from shared.events import (
    ANNOTATION_ACCEPTED,
    ANNOTATION_REFUSED,
    ANNOTATION_REJECTED,
    ANNOTATION_REWORK_REQUESTED,
    ANNOTATION_SUBMITTED,
    ANNOTATION_WITHDRAWN,
    API_KEY_CREATED,
    API_KEY_REVOKED,
    API_KEY_SCOPE_CHANGED,
    ASSET_CLEANED,
    ASSET_INGESTED,
    ASSET_REJECTED,
    CONSENSUS_COMPUTED,
    DATASET_CREATED,
    DATASET_VERSION_CREATED,
    DEAD_LETTER,
    DELIVERY_FAILED,
    DROP_REJECTED,
    FRAME_SAMPLED,
    GOLD_SCORED,
    JOB_CREATED,
    JOB_STATE_CHANGED,
    OBJECT_CREATED,
    ONTOLOGY_VERSION_CREATED,
    TASK_CREATED,
    TASK_DISPATCHED,
    TASK_EXPIRED,
    TASK_REWORK_SENT,
    VENDOR_CHANGED,
    VENDOR_CREATED,
    AnnotationAcceptedV1,
    AnnotationRejectedV1,
    AnnotationReworkRequestedV1,
    AssetCleanedV1,
    AssetIngestedV1,
    AssetRejectedV1,
    DatasetVersionCreatedV1,
    DeadLetterV1,
    DropRejectedV1,
    EventType,
    Payload,
)
from shared.routing import Event
from shared.uow import UnitOfWork

P = TypeVar("P", bound=Payload)
StageCounts = Counter[tuple[uuid.UUID, str, datetime]]


def minute(at: datetime) -> datetime:
    """The minute an event time falls in (the throughput chart's bucket)."""
    return at.replace(second=0, microsecond=0)


def trace_id(traceparent: str | None) -> str | None:
    """The trace id of a W3C ``traceparent`` (``00-<trace id>-<span id>-<flags>``)."""
    parts = (traceparent or "").split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


Applier = Callable[[UnitOfWork, list[Event[Any]], "StageCounts"], Awaitable[None]]


async def project(dashboard: Dashboard, events: Sequence[Event[Any]]) -> None:
    """A partition's poll, whatever its types, in ONE unit of work: the new events (inbox)
    are applied in order, a run of consecutive events of one projection per call, then the
    stage counts and the change counter are written once."""
    unique = list({e.id: e for e in events if APPLIERS[e.envelope.type] is not None}.values())
    if not unique:
        return
    async with dashboard.units.begin() as uow:
        fresh_ids = await uow.claim_all([e.envelope for e in unique])
        fresh = [e for e in unique if e.id in fresh_ids]
        stages: StageCounts = Counter()
        for applier, run in _runs(fresh):
            await applier(uow, run, stages)
        await repo.add_stage_counts(uow.session, stages)
        await count_in_funnel(
            uow, {e.payload.asset_id for e in fresh if APPLIERS[e.envelope.type] in MOVE_ASSETS}
        )
        if fresh:
            await repo.count_applied(uow.session, len(fresh))


async def count_in_funnel(uow: UnitOfWork, asset_ids: set[uuid.UUID]) -> None:
    """Move the funnel's counters by what the unit of work changed in these assets' rows.

    Each asset's ``funnel_assets`` row records what it was last counted as, so the move is
    exact whoever wrote the asset before (another copy of the dashboard, reading another
    topic): this unit of work holds the asset row's lock from its own write until it commits,
    and every writer of ``funnel_assets`` writes the asset row first. An asset that did not
    change (an event older than what the row holds) moves nothing."""
    moves: Counter[funnel.CounterKey] = Counter()
    counted, gone = [], []
    for row in await repo.funnel_rows(uow.session, sorted(asset_ids)):
        now = funnel.standing(
            dataset_id=row["dataset_id"],
            uploaded_at=row["uploaded_at"],
            verdict=row["verdict"],
            reason_codes=row["reason_codes"] or (),
            tasks=row["tasks"],
            dispatched=row["dispatched"],
            submissions=row["submissions"],
            decision=row["decision"],
        )
        was = (
            None
            if row["counted_marks"] is None
            else funnel.Standing(
                row["counted_dataset_id"], row["counted_hour"], tuple(row["counted_marks"])
            )
        )
        if now == was:
            continue
        funnel.move(moves, was, now)
        if now is None:
            gone.append(row["asset_id"])
        else:
            counted.append(
                {
                    "asset_id": row["asset_id"],
                    "dataset_id": now.dataset_id,
                    "hour": now.hour,
                    "marks": list(now.marks),
                }
            )
    await repo.add_funnel_counts(uow.session, moves)
    await repo.set_counted(uow.session, counted)
    await repo.forget_counted(uow.session, gone)


def _runs(events: Sequence[Event[Any]]) -> Iterator[tuple[Applier, list[Event[Any]]]]:
    """Consecutive events of one projection, in order (a job's state change is applied after
    its creation, whatever else the poll holds)."""
    run: list[Event[Any]] = []
    current: Applier | None = None
    for event in events:
        applier = APPLIERS[event.envelope.type]
        assert applier is not None
        if applier is not current and run:
            assert current is not None
            yield current, run
            run = []
        current = applier
        run.append(event)
    if run and current is not None:
        yield current, run


def _last_per(events: Sequence[Event[P]], key: Callable[[Event[P]], Any]) -> list[Event[P]]:
    """The latest event (by event time, then arrival) per ``key``."""
    latest: dict[Any, Event[P]] = {}
    for event in events:
        known = latest.get(key(event))
        if known is None or known.envelope.time <= event.envelope.time:
            latest[key(event)] = event
    return list(latest.values())


# ------------------------------------------------------------------------------ ingest


async def apply_datasets(uow: UnitOfWork, events: list[Event[Any]], _: StageCounts) -> None:
    """Datasets were created."""
    rows = [
        {
            "dataset_id": e.payload.dataset_id,
            "slug": e.payload.slug,
            "name": e.payload.name,
            "created_at": e.envelope.time,
        }
        for e in _last_per(events, lambda e: e.payload.dataset_id)
    ]
    await repo.upsert_datasets(uow.session, rows)


async def apply_uploads(uow: UnitOfWork, events: list[Event[Any]], stages: StageCounts) -> None:
    """Assets were stored: they enter the funnel."""
    rows = []
    for e in _last_per(events, lambda e: e.payload.asset_id):
        p: AssetIngestedV1 = e.payload
        rows.append(
            {
                "asset_id": p.asset_id,
                "dataset_id": p.dataset_id,
                "filename": p.filename,
                "sha256": p.sha256,
                "media_type": p.media_type,
                "size_bytes": p.size_bytes,
                "source": p.source,
                "parent_asset_id": p.parent_asset_id,
                "uploaded_by": p.uploaded_by,
                "bucket": p.bucket,
                "object_key": p.object_key,
                "trace_id": trace_id(e.envelope.traceparent),
                "uploaded_at": e.envelope.time,
            }
        )
    for e in events:
        stages[(e.payload.dataset_id, "stored", minute(e.envelope.time))] += 1
    await repo.upsert_uploads(uow.session, rows)


async def apply_drops(uow: UnitOfWork, events: list[Event[Any]], _: StageCounts) -> None:
    """Objects dropped into the landing bucket were refused."""
    rows = []
    for e in events:
        p: DropRejectedV1 = e.payload
        rows.append(
            {
                "event_id": e.id,
                "bucket": p.bucket,
                "key": p.key,
                "dataset_slug": p.key.split("/", 1)[0] if "/" in p.key else None,
                "reason": p.reason,
                "message": p.message,
                "at": e.envelope.time,
            }
        )
    await repo.add_drops(uow.session, rows)


# ------------------------------------------------------------------------------- clean


async def apply_verdicts(uow: UnitOfWork, events: list[Event[Any]], stages: StageCounts) -> None:
    """Clean's verdicts, cleaned or rejected (one projection: the two types interleave)."""
    rows = []
    for e in events:
        verdict = "rejected" if isinstance(e.payload, AssetRejectedV1) else "cleaned"
        stages[(e.payload.dataset_id, verdict, minute(e.envelope.time))] += 1
    for e in _last_per(events, lambda e: e.payload.asset_id):
        p: AssetCleanedV1 | AssetRejectedV1 = e.payload
        rejected = isinstance(p, AssetRejectedV1)
        reasons = p.reasons if isinstance(p, AssetRejectedV1) else []
        rows.append(
            {
                "asset_id": p.asset_id,
                "dataset_id": p.dataset_id,
                "verdict": "rejected" if rejected else "cleaned",
                "verdict_at": e.envelope.time,
                "reasons": [r.model_dump(mode="json") for r in reasons],
                "flags": [f.model_dump(mode="json") for f in p.flags],
                "metrics": p.metrics,
            }
        )
    await repo.upsert_verdicts(uow.session, rows)


# ---------------------------------------------------------------------------- labeling


async def apply_vendors(uow: UnitOfWork, events: list[Event[Any]], _: StageCounts) -> None:
    """Vendors were registered."""
    rows = [
        {
            "vendor_id": e.payload.vendor_id,
            "name": e.payload.name,
            "kind": e.payload.kind,
            "capacity": e.payload.capacity,
            "created_at": e.envelope.time,
        }
        for e in _last_per(events, lambda e: e.payload.vendor_id)
    ]
    await repo.upsert_vendors(uow.session, rows)


async def apply_jobs(uow: UnitOfWork, events: list[Event[Any]], _: StageCounts) -> None:
    """Labeling jobs were created."""
    rows = [
        {
            "job_id": e.payload.job_id,
            "name": e.payload.name,
            "dataset_id": e.payload.dataset_id,
            "state": "open",
            "created_at": e.envelope.time,
        }
        for e in _last_per(events, lambda e: e.payload.job_id)
    ]
    await repo.upsert_jobs(uow.session, rows)


async def apply_job_states(uow: UnitOfWork, events: list[Event[Any]], _: StageCounts) -> None:
    """Jobs were paused, resumed, cancelled or completed (after their creation: in order)."""
    states = {e.payload.job_id: e.payload.state for e in events}
    await repo.set_job_states(uow.session, states)


def _task_row(event: Event[Any], state: str, vendor_id: uuid.UUID | None) -> dict[str, Any]:
    p = event.payload
    return {
        "task_id": p.task_id,
        "job_id": p.job_id,
        "asset_id": p.asset_id,
        "vendor_id": vendor_id,
        "state": state,
        "gold": getattr(p, "gold", None),
        "state_at": event.envelope.time,
    }


def _per_asset(
    events: Sequence[Event[Any]], count: str, first: str, stage: str, stages: StageCounts
) -> list[dict[str, Any]]:
    """Per asset: how many of ``events`` name it (``count``) and the earliest (``first``);
    each event also counts in ``stage``."""
    per_asset: dict[uuid.UUID, dict[str, Any]] = {}
    for e in events:
        p = e.payload
        row = per_asset.setdefault(
            p.asset_id,
            {"asset_id": p.asset_id, "dataset_id": p.dataset_id, count: 0, first: e.envelope.time},
        )
        row[count] += 1
        row[first] = min(row[first], e.envelope.time)
        stages[(p.dataset_id, stage, minute(e.envelope.time))] += 1
    return list(per_asset.values())


async def apply_tasks(uow: UnitOfWork, events: list[Event[Any]], stages: StageCounts) -> None:
    """Assets entered a job's queue: they are in labeling."""
    rows = [_task_row(e, "queued", None) for e in _last_per(events, lambda e: e.payload.task_id)]
    await repo.upsert_tasks(uow.session, rows)
    rows = _per_asset(events, "tasks", "first_task_at", "in_labeling", stages)
    await repo.count_tasks(uow.session, rows)


async def _count_by_asset(
    uow: UnitOfWork, events: Sequence[Event[Any]], stage: str, stages: StageCounts
) -> None:
    """Count events that name an asset but not its dataset (the asset's dataset comes from
    the projection, or its job's)."""
    by_asset = await repo.datasets_of_assets(uow.session, [e.payload.asset_id for e in events])
    by_job = await repo.datasets_of_jobs(uow.session, [e.payload.job_id for e in events])
    for e in events:
        dataset = by_asset.get(e.payload.asset_id) or by_job.get(e.payload.job_id)
        if dataset is not None:
            stages[(dataset, stage, minute(e.envelope.time))] += 1


async def apply_dispatches(uow: UnitOfWork, events: list[Event[Any]], stages: StageCounts) -> None:
    """Vendors took tasks."""
    last = _last_per(events, lambda e: e.payload.task_id)
    rows = [_task_row(e, "dispatched", e.payload.vendor_id) for e in last]
    await repo.upsert_tasks(uow.session, rows)
    first: dict[uuid.UUID, datetime] = {}
    for e in events:
        at = first.get(e.payload.asset_id)
        first[e.payload.asset_id] = e.envelope.time if at is None else min(at, e.envelope.time)
    await repo.note_dispatches(
        uow.session, [{"asset_id": a, "first_dispatched_at": at} for a, at in first.items()]
    )
    await _count_by_asset(uow, events, "dispatched", stages)


async def apply_expiries(uow: UnitOfWork, events: list[Event[Any]], _: StageCounts) -> None:
    """Vendors let tasks' leases lapse."""
    last = _last_per(events, lambda e: e.payload.task_id)
    rows = [_task_row(e, "queued" if e.payload.requeued else "expired", None) for e in last]
    await repo.upsert_tasks(uow.session, rows)


async def apply_rework_sent(uow: UnitOfWork, events: list[Event[Any]], _: StageCounts) -> None:
    """Tasks went back to a vendor for rework."""
    last = _last_per(events, lambda e: e.payload.task_id)
    await repo.upsert_tasks(
        uow.session, [_task_row(e, "rework", e.payload.vendor_id) for e in last]
    )


async def apply_submissions(uow: UnitOfWork, events: list[Event[Any]], stages: StageCounts) -> None:
    """Vendors answered tasks."""
    last = _last_per(events, lambda e: e.payload.task_id)
    await repo.upsert_tasks(
        uow.session, [_task_row(e, "answered", e.payload.vendor_id) for e in last]
    )
    rows = _per_asset(events, "submissions", "first_submitted_at", "submitted", stages)
    await repo.count_submissions(uow.session, rows)


# ---------------------------------------------------------------------------------- qc

# A QC decision's type -> (the asset's decision, the throughput stage it counts in).
DECISIONS: dict[type[Payload], tuple[str, str]] = {
    AnnotationAcceptedV1: ("accepted", "accepted"),
    AnnotationRejectedV1: ("rejected", "qc_rejected"),
    AnnotationReworkRequestedV1: ("rework", "rework"),
}


async def apply_decisions(uow: UnitOfWork, events: list[Event[Any]], stages: StageCounts) -> None:
    """QC accepted, rejected or sent back assets' labels (the latest decision counts)."""
    rows = []
    for e in _last_per(events, lambda e: e.payload.asset_id):
        p = e.payload
        rows.append(
            {
                "asset_id": p.asset_id,
                "dataset_id": p.dataset_id,
                "decision": DECISIONS[type(p)][0],
                "decided_at": e.envelope.time,
                "decided_by": p.requested_by
                if isinstance(p, AnnotationReworkRequestedV1)
                else p.decided_by,
            }
        )
    for e in events:
        stages[(e.payload.dataset_id, DECISIONS[type(e.payload)][1], minute(e.envelope.time))] += 1
    await repo.upsert_decisions(uow.session, rows)


async def apply_versions(uow: UnitOfWork, events: list[Event[Any]], _: StageCounts) -> None:
    """Dataset versions were frozen: their items are ready to export."""
    rows = []
    for e in events:
        p: DatasetVersionCreatedV1 = e.payload
        rows.append(
            {
                "dataset_id": p.dataset_id,
                "version": p.version,
                "item_count": p.item_count,
                "shape_count": p.shape_count,
                "created_by": p.created_by,
                "created_at": e.envelope.time,
            }
        )
    await repo.add_versions(uow.session, rows)


# ------------------------------------------------------------------------ dead letters


async def apply_dead_letters(uow: UnitOfWork, events: list[Event[Any]], _: StageCounts) -> None:
    """Consumers gave up on messages."""
    rows = []
    for e in events:
        p: DeadLetterV1 = e.payload
        rows.append(
            {
                "event_id": e.id,
                "original_topic": p.original_topic,
                "original_partition": p.original_partition,
                "original_offset": p.original_offset,
                "original_event_id": p.original_event_id,
                "original_type": p.original_type,
                "consumer_group": p.consumer_group,
                "error": p.error,
                "at": e.envelope.time,
            }
        )
    await repo.add_dead_letters(uow.session, rows)


# ------------------------------------------------------------------------ the table

_TABLE: dict[EventType[Any], Applier | None] = {
    DATASET_CREATED: apply_datasets,
    ASSET_INGESTED: apply_uploads,
    DROP_REJECTED: apply_drops,
    ASSET_CLEANED: apply_verdicts,
    ASSET_REJECTED: apply_verdicts,
    VENDOR_CREATED: apply_vendors,
    JOB_CREATED: apply_jobs,
    JOB_STATE_CHANGED: apply_job_states,
    TASK_CREATED: apply_tasks,
    TASK_DISPATCHED: apply_dispatches,
    TASK_EXPIRED: apply_expiries,
    TASK_REWORK_SENT: apply_rework_sent,
    ANNOTATION_SUBMITTED: apply_submissions,
    ANNOTATION_ACCEPTED: apply_decisions,
    ANNOTATION_REJECTED: apply_decisions,
    ANNOTATION_REWORK_REQUESTED: apply_decisions,
    DATASET_VERSION_CREATED: apply_versions,
    DEAD_LETTER: apply_dead_letters,
    # the landing notification is followed by an asset.ingested or a drop_rejected
    OBJECT_CREATED: None,
    # a sampled frame arrives again as an asset.ingested image of its own
    FRAME_SAMPLED: None,
    API_KEY_CREATED: None,
    API_KEY_REVOKED: None,
    API_KEY_SCOPE_CHANGED: None,
    ONTOLOGY_VERSION_CREATED: None,
    VENDOR_CHANGED: None,
    DELIVERY_FAILED: None,
    ANNOTATION_REFUSED: None,
    ANNOTATION_WITHDRAWN: None,
    # vendor quality comes from QC's scorecards API, which already sums these
    CONSENSUS_COMPUTED: None,
    GOLD_SCORED: None,
}
# the projections that write asset rows: their assets' funnel counters move
MOVE_ASSETS: frozenset[Applier] = frozenset(
    {
        apply_uploads,
        apply_verdicts,
        apply_tasks,
        apply_dispatches,
        apply_submissions,
        apply_decisions,
    }
)
# by CloudEvents type, what project() looks up
APPLIERS: dict[str, Applier | None] = {t.name: a for t, a in _TABLE.items()}
PROJECTED: tuple[EventType[Any], ...] = tuple(_TABLE)
