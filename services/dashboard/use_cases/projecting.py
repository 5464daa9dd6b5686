"""Projecting events: each handler takes a run of events of one type and applies the new ones
in one unit of work (inbox claims, projection writes and the change counter commit together,
so a redelivered event changes nothing)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from services.dashboard.context import Dashboard
from services.dashboard.repository import projections as repo
from shared.events import (
    AnnotationAcceptedV1,
    AnnotationRejectedV1,
    AnnotationReworkRequestedV1,
    AnnotationSubmittedV1,
    AssetCleanedV1,
    AssetIngestedV1,
    AssetRejectedV1,
    DatasetCreatedV1,
    DatasetVersionCreatedV1,
    DeadLetterV1,
    DropRejectedV1,
    JobCreatedV1,
    JobStateChangedV1,
    Payload,
    TaskCreatedV1,
    TaskDispatchedV1,
    TaskExpiredV1,
    TaskReworkSentV1,
    VendorCreatedV1,
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


async def _project(
    dashboard: Dashboard,
    events: Sequence[Event[P]],
    apply: Callable[[UnitOfWork, list[Event[P]]], Awaitable[None]],
) -> None:
    """Apply the events of ``events`` not applied before, in one unit of work."""
    unique = list({e.id: e for e in events}.values())
    async with dashboard.units.begin() as uow:
        fresh_ids = await uow.claim_all([e.envelope for e in unique])
        fresh = [e for e in unique if e.id in fresh_ids]
        if fresh:
            await apply(uow, fresh)
            await repo.count_applied(uow.session, len(fresh))


def _last_per(events: Sequence[Event[P]], key: Callable[[Event[P]], Any]) -> list[Event[P]]:
    """The latest event (by event time, then arrival) per ``key``."""
    latest: dict[Any, Event[P]] = {}
    for event in events:
        known = latest.get(key(event))
        if known is None or known.envelope.time <= event.envelope.time:
            latest[key(event)] = event
    return list(latest.values())


# ------------------------------------------------------------------------------ ingest


async def project_datasets(dashboard: Dashboard, events: Sequence[Event[DatasetCreatedV1]]) -> None:
    """A dataset was created."""

    async def apply(uow: UnitOfWork, fresh: list[Event[DatasetCreatedV1]]) -> None:
        rows = [
            {
                "dataset_id": e.payload.dataset_id,
                "slug": e.payload.slug,
                "name": e.payload.name,
                "created_at": e.envelope.time,
            }
            for e in _last_per(fresh, lambda e: e.payload.dataset_id)
        ]
        await repo.upsert_datasets(uow.session, rows)

    await _project(dashboard, events, apply)


async def project_uploads(dashboard: Dashboard, events: Sequence[Event[AssetIngestedV1]]) -> None:
    """An asset was stored: it enters the funnel."""

    async def apply(uow: UnitOfWork, fresh: list[Event[AssetIngestedV1]]) -> None:
        rows = []
        stages: StageCounts = Counter()
        for e in _last_per(fresh, lambda e: e.payload.asset_id):
            p = e.payload
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
            stages[(p.dataset_id, "stored", minute(e.envelope.time))] += 1
        await repo.upsert_uploads(uow.session, rows)
        await repo.add_stage_counts(uow.session, stages)

    await _project(dashboard, events, apply)


async def project_drops(dashboard: Dashboard, events: Sequence[Event[DropRejectedV1]]) -> None:
    """An object dropped into the landing bucket was refused."""

    async def apply(uow: UnitOfWork, fresh: list[Event[DropRejectedV1]]) -> None:
        rows = [
            {
                "event_id": e.id,
                "bucket": e.payload.bucket,
                "key": e.payload.key,
                "dataset_slug": e.payload.key.split("/", 1)[0] if "/" in e.payload.key else None,
                "reason": e.payload.reason,
                "message": e.payload.message,
                "at": e.envelope.time,
            }
            for e in fresh
        ]
        await repo.add_drops(uow.session, rows)

    await _project(dashboard, events, apply)


# ------------------------------------------------------------------------------- clean


def _verdict_rows(
    events: Sequence[Event[Any]], verdict: str
) -> tuple[list[dict[str, Any]], StageCounts]:
    """Assets' verdicts (the latest of each) and the events per stage counted from them."""
    stages: StageCounts = Counter(
        (e.payload.dataset_id, verdict, minute(e.envelope.time)) for e in events
    )
    rows = []
    for e in _last_per(events, lambda e: e.payload.asset_id):
        p: AssetCleanedV1 | AssetRejectedV1 = e.payload
        reasons = p.reasons if isinstance(p, AssetRejectedV1) else []
        rows.append(
            {
                "asset_id": p.asset_id,
                "dataset_id": p.dataset_id,
                "verdict": verdict,
                "verdict_at": e.envelope.time,
                "reasons": [r.model_dump(mode="json") for r in reasons],
                "flags": [f.model_dump(mode="json") for f in p.flags],
                "metrics": p.metrics,
            }
        )
    return rows, stages


async def project_cleaned(dashboard: Dashboard, events: Sequence[Event[AssetCleanedV1]]) -> None:
    """An asset passed cleaning."""

    async def apply(uow: UnitOfWork, fresh: list[Event[AssetCleanedV1]]) -> None:
        rows, stages = _verdict_rows(fresh, "cleaned")
        await repo.upsert_verdicts(uow.session, rows)
        await repo.add_stage_counts(uow.session, stages)

    await _project(dashboard, events, apply)


async def project_rejected(dashboard: Dashboard, events: Sequence[Event[AssetRejectedV1]]) -> None:
    """An asset failed cleaning."""

    async def apply(uow: UnitOfWork, fresh: list[Event[AssetRejectedV1]]) -> None:
        rows, stages = _verdict_rows(fresh, "rejected")
        await repo.upsert_verdicts(uow.session, rows)
        await repo.add_stage_counts(uow.session, stages)

    await _project(dashboard, events, apply)


# ---------------------------------------------------------------------------- labeling


async def project_vendors(dashboard: Dashboard, events: Sequence[Event[VendorCreatedV1]]) -> None:
    """A vendor was registered."""

    async def apply(uow: UnitOfWork, fresh: list[Event[VendorCreatedV1]]) -> None:
        rows = [
            {
                "vendor_id": e.payload.vendor_id,
                "name": e.payload.name,
                "kind": e.payload.kind,
                "capacity": e.payload.capacity,
                "created_at": e.envelope.time,
            }
            for e in _last_per(fresh, lambda e: e.payload.vendor_id)
        ]
        await repo.upsert_vendors(uow.session, rows)

    await _project(dashboard, events, apply)


async def project_jobs(dashboard: Dashboard, events: Sequence[Event[JobCreatedV1]]) -> None:
    """A labeling job was created."""

    async def apply(uow: UnitOfWork, fresh: list[Event[JobCreatedV1]]) -> None:
        rows = [
            {
                "job_id": e.payload.job_id,
                "name": e.payload.name,
                "dataset_id": e.payload.dataset_id,
                "state": "open",
                "created_at": e.envelope.time,
            }
            for e in _last_per(fresh, lambda e: e.payload.job_id)
        ]
        await repo.upsert_jobs(uow.session, rows)

    await _project(dashboard, events, apply)


async def project_job_states(
    dashboard: Dashboard, events: Sequence[Event[JobStateChangedV1]]
) -> None:
    """A job was paused, resumed, cancelled or completed."""

    async def apply(uow: UnitOfWork, fresh: list[Event[JobStateChangedV1]]) -> None:
        states = {e.payload.job_id: e.payload.state for e in fresh}
        await repo.set_job_states(uow.session, states)

    await _project(dashboard, events, apply)


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


async def project_tasks(dashboard: Dashboard, events: Sequence[Event[TaskCreatedV1]]) -> None:
    """An asset entered a job's queue: it is in labeling."""

    async def apply(uow: UnitOfWork, fresh: list[Event[TaskCreatedV1]]) -> None:
        rows = [_task_row(e, "queued", None) for e in _last_per(fresh, lambda e: e.payload.task_id)]
        await repo.upsert_tasks(uow.session, rows)
        per_asset: dict[uuid.UUID, dict[str, Any]] = {}
        stages: StageCounts = Counter()
        for e in fresh:
            p = e.payload
            row = per_asset.setdefault(
                p.asset_id,
                {
                    "asset_id": p.asset_id,
                    "dataset_id": p.dataset_id,
                    "tasks": 0,
                    "first_task_at": e.envelope.time,
                },
            )
            row["tasks"] += 1
            row["first_task_at"] = min(row["first_task_at"], e.envelope.time)
            stages[(p.dataset_id, "in_labeling", minute(e.envelope.time))] += 1
        await repo.count_tasks(uow.session, list(per_asset.values()))
        await repo.add_stage_counts(uow.session, stages)

    await _project(dashboard, events, apply)


async def _stages_by_asset(
    uow: UnitOfWork, events: Sequence[Event[Any]], stage: str
) -> StageCounts:
    """Events per (dataset, ``stage``, minute) for events that name an asset but not its
    dataset (the asset's dataset comes from the projection, or its job's)."""
    by_asset = await repo.datasets_of_assets(uow.session, [e.payload.asset_id for e in events])
    by_job = await repo.datasets_of_jobs(uow.session, [e.payload.job_id for e in events])
    stages: StageCounts = Counter()
    for e in events:
        dataset = by_asset.get(e.payload.asset_id) or by_job.get(e.payload.job_id)
        if dataset is not None:
            stages[(dataset, stage, minute(e.envelope.time))] += 1
    return stages


async def project_dispatches(
    dashboard: Dashboard, events: Sequence[Event[TaskDispatchedV1]]
) -> None:
    """A vendor took a task."""

    async def apply(uow: UnitOfWork, fresh: list[Event[TaskDispatchedV1]]) -> None:
        last = _last_per(fresh, lambda e: e.payload.task_id)
        await repo.upsert_tasks(
            uow.session, [_task_row(e, "dispatched", e.payload.vendor_id) for e in last]
        )
        first: dict[uuid.UUID, datetime] = {}
        for e in fresh:
            at = first.get(e.payload.asset_id)
            first[e.payload.asset_id] = e.envelope.time if at is None else min(at, e.envelope.time)
        await repo.note_dispatches(
            uow.session, [{"asset_id": a, "first_dispatched_at": at} for a, at in first.items()]
        )
        await repo.add_stage_counts(uow.session, await _stages_by_asset(uow, fresh, "dispatched"))

    await _project(dashboard, events, apply)


async def project_expiries(dashboard: Dashboard, events: Sequence[Event[TaskExpiredV1]]) -> None:
    """A vendor let a task's lease lapse."""

    async def apply(uow: UnitOfWork, fresh: list[Event[TaskExpiredV1]]) -> None:
        last = _last_per(fresh, lambda e: e.payload.task_id)
        rows = [_task_row(e, "queued" if e.payload.requeued else "expired", None) for e in last]
        await repo.upsert_tasks(uow.session, rows)

    await _project(dashboard, events, apply)


async def project_rework_sent(
    dashboard: Dashboard, events: Sequence[Event[TaskReworkSentV1]]
) -> None:
    """A task went back to a vendor for rework."""

    async def apply(uow: UnitOfWork, fresh: list[Event[TaskReworkSentV1]]) -> None:
        last = _last_per(fresh, lambda e: e.payload.task_id)
        await repo.upsert_tasks(
            uow.session, [_task_row(e, "rework", e.payload.vendor_id) for e in last]
        )

    await _project(dashboard, events, apply)


async def project_submissions(
    dashboard: Dashboard, events: Sequence[Event[AnnotationSubmittedV1]]
) -> None:
    """A vendor answered a task."""

    async def apply(uow: UnitOfWork, fresh: list[Event[AnnotationSubmittedV1]]) -> None:
        last = _last_per(fresh, lambda e: e.payload.task_id)
        await repo.upsert_tasks(
            uow.session, [_task_row(e, "answered", e.payload.vendor_id) for e in last]
        )
        per_asset: dict[uuid.UUID, dict[str, Any]] = {}
        stages: StageCounts = Counter()
        for e in fresh:
            p = e.payload
            row = per_asset.setdefault(
                p.asset_id,
                {
                    "asset_id": p.asset_id,
                    "dataset_id": p.dataset_id,
                    "submissions": 0,
                    "first_submitted_at": e.envelope.time,
                },
            )
            row["submissions"] += 1
            row["first_submitted_at"] = min(row["first_submitted_at"], e.envelope.time)
            stages[(p.dataset_id, "submitted", minute(e.envelope.time))] += 1
        await repo.count_submissions(uow.session, list(per_asset.values()))
        await repo.add_stage_counts(uow.session, stages)

    await _project(dashboard, events, apply)


# ---------------------------------------------------------------------------------- qc

Decision = AnnotationAcceptedV1 | AnnotationRejectedV1 | AnnotationReworkRequestedV1


def _decision_applier(
    decision: str, stage: str
) -> Callable[[UnitOfWork, list[Event[Any]]], Awaitable[None]]:
    async def apply(uow: UnitOfWork, fresh: list[Event[Any]]) -> None:
        rows = [
            {
                "asset_id": e.payload.asset_id,
                "dataset_id": e.payload.dataset_id,
                "decision": decision,
                "decided_at": e.envelope.time,
                "decided_by": getattr(e.payload, "decided_by", None)
                or getattr(e.payload, "requested_by", None),
            }
            for e in _last_per(fresh, lambda e: e.payload.asset_id)
        ]
        await repo.upsert_decisions(uow.session, rows)
        stages: StageCounts = Counter(
            (e.payload.dataset_id, stage, minute(e.envelope.time)) for e in fresh
        )
        await repo.add_stage_counts(uow.session, stages)

    return apply


async def project_accepted(
    dashboard: Dashboard, events: Sequence[Event[AnnotationAcceptedV1]]
) -> None:
    """QC accepted an asset's labels."""
    await _project(dashboard, events, _decision_applier("accepted", "accepted"))


async def project_qc_rejected(
    dashboard: Dashboard, events: Sequence[Event[AnnotationRejectedV1]]
) -> None:
    """A reviewer rejected an asset's labels."""
    await _project(dashboard, events, _decision_applier("rejected", "qc_rejected"))


async def project_rework(
    dashboard: Dashboard, events: Sequence[Event[AnnotationReworkRequestedV1]]
) -> None:
    """QC sent an asset's labels back for rework."""
    await _project(dashboard, events, _decision_applier("rework", "rework"))


async def project_versions(
    dashboard: Dashboard, events: Sequence[Event[DatasetVersionCreatedV1]]
) -> None:
    """A dataset version was frozen: its items are ready to export."""

    async def apply(uow: UnitOfWork, fresh: list[Event[DatasetVersionCreatedV1]]) -> None:
        rows = [
            {
                "dataset_id": e.payload.dataset_id,
                "version": e.payload.version,
                "item_count": e.payload.item_count,
                "shape_count": e.payload.shape_count,
                "created_by": e.payload.created_by,
                "created_at": e.envelope.time,
            }
            for e in fresh
        ]
        await repo.add_versions(uow.session, rows)

    await _project(dashboard, events, apply)


# ------------------------------------------------------------------------ dead letters


async def project_dead_letters(dashboard: Dashboard, events: Sequence[Event[DeadLetterV1]]) -> None:
    """A consumer gave up on a message."""

    async def apply(uow: UnitOfWork, fresh: list[Event[DeadLetterV1]]) -> None:
        rows = [
            {
                "event_id": e.id,
                "original_topic": e.payload.original_topic,
                "original_partition": e.payload.original_partition,
                "original_offset": e.payload.original_offset,
                "original_event_id": e.payload.original_event_id,
                "original_type": e.payload.original_type,
                "consumer_group": e.payload.consumer_group,
                "error": e.payload.error,
                "at": e.envelope.time,
            }
            for e in fresh
        ]
        await repo.add_dead_letters(uow.session, rows)

    await _project(dashboard, events, apply)
