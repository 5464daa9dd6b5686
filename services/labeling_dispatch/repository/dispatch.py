"""The dispatcher's queries: room at vendors, tasks to batch, lapsed leases, task hand-overs.

Rows the dispatcher changes are taken with ``FOR UPDATE SKIP LOCKED`` so several copies of the
service share the work without waiting on (or repeating) each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, insert, not_, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.labeling_dispatch.models import (
    Assignment,
    Delivery,
    DeliveryAttempt,
    Job,
    JobVendor,
    KnownAsset,
    OntologyVersion,
    Prediction,
    Task,
    Vendor,
)

# Task states in which a vendor holds a task (counted against its capacity).
HELD = ("assigned", "dispatched")


def _held_count(vendor_id: Any) -> Any:
    return (
        select(func.count())
        .select_from(Task)
        .where(Task.vendor_id == vendor_id, Task.state.in_(HELD))
        .scalar_subquery()
    )


def _vendor_count(job_id: Any) -> Any:
    return (
        select(func.count())
        .select_from(JobVendor)
        .where(JobVendor.job_id == job_id)
        .scalar_subquery()
    )


async def vendors_with_room(
    session: AsyncSession, kinds: Sequence[str], failed_since: datetime
) -> list[uuid.UUID]:
    """Enabled vendors of the given kinds holding fewer tasks than their capacity.

    A vendor whose latest delivery failed after ``failed_since`` is left out: its tasks went
    back to the queue and, without this pause, would go straight back to it in a new batch.
    """
    latest = aliased(Delivery)
    newest_created = (
        select(func.max(latest.created_at)).where(latest.vendor_id == Vendor.id).scalar_subquery()
    )
    last_try = (
        select(func.max(DeliveryAttempt.attempted_at))
        .where(DeliveryAttempt.delivery_id == Delivery.id)
        .scalar_subquery()
    )
    failed_lately = exists().where(
        Delivery.vendor_id == Vendor.id,
        Delivery.created_at == newest_created,
        Delivery.status == "failed",
        last_try > failed_since,
    )
    query = select(Vendor.id).where(
        Vendor.enabled,
        Vendor.kind.in_(kinds),
        Vendor.capacity > _held_count(Vendor.id),
        not_(failed_lately),
    )
    return list((await session.execute(query)).scalars())


async def any_queued(session: AsyncSession) -> bool:
    """Whether any task waits for a vendor (a cheap test before locking vendors)."""
    query = select(exists().where(Task.state == "queued"))
    return bool((await session.execute(query)).scalar())


async def lock_vendor(
    session: AsyncSession, vendor_id: uuid.UUID, *, wait: bool = False
) -> tuple[Vendor, int] | None:
    """The vendor and its free capacity, locked; None if disabled (or, unless ``wait``, if
    another copy holds it: that copy is filling its batches already)."""
    query = (
        select(Vendor)
        .where(Vendor.id == vendor_id, Vendor.enabled)
        .with_for_update(skip_locked=not wait)
    )
    vendor = (await session.execute(query)).scalar_one_or_none()
    if vendor is None:
        return None
    held = (await session.execute(select(_held_count(vendor_id)))).scalar_one()
    return vendor, vendor.capacity - int(held)


def _eligible(vendor_id: uuid.UUID, keep_exclusions: bool = True) -> Any:
    """Queued tasks ``vendor_id`` may take: an open job of its, not excluded, bytes known.

    With several vendors on a job, a task is not given to a vendor holding (or having answered)
    another replica of the same asset. ``keep_exclusions`` False ignores a task's excluded
    vendors (a person redelivering by hand has decided).
    """
    other = aliased(Task)
    holds_replica = exists().where(
        Assignment.task_id == other.id,
        other.job_id == Task.job_id,
        other.asset_id == Task.asset_id,
        other.id != Task.id,
        Assignment.vendor_id == vendor_id,
        Assignment.outcome.in_(("open", "answered")),
    )
    return and_(
        Task.state == "queued",
        Job.id == Task.job_id,
        Job.state == "open",
        exists().where(JobVendor.job_id == Task.job_id, JobVendor.vendor_id == vendor_id),
        not_(Task.excluded_vendors.contains([vendor_id])) if keep_exclusions else true(),
        KnownAsset.id == Task.asset_id,
        KnownAsset.sha256.is_not(None),
        or_(_vendor_count(Task.job_id) <= 1, not_(holds_replica)),
    )


async def next_job_for(session: AsyncSession, vendor_id: uuid.UUID) -> uuid.UUID | None:
    """The job of the best queued task this vendor may take."""
    query = (
        select(Task.job_id)
        .select_from(Task)
        .join(Job, Job.id == Task.job_id)
        .join(KnownAsset, KnownAsset.id == Task.asset_id)
        .where(_eligible(vendor_id))
        .order_by(Task.priority_score, Task.created_at)
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def take_tasks(
    session: AsyncSession,
    vendor_id: uuid.UUID,
    job_id: uuid.UUID,
    limit: int,
    only: Sequence[uuid.UUID] | None = None,
    keep_exclusions: bool = True,
) -> list[Task]:
    """Up to ``limit`` of the job's tasks the vendor may take (of ``only``), best first, locked."""
    query = (
        select(Task)
        .join(Job, Job.id == Task.job_id)
        .join(KnownAsset, KnownAsset.id == Task.asset_id)
        .where(_eligible(vendor_id, keep_exclusions), Task.job_id == job_id)
        .order_by(Task.priority_score, Task.created_at)
        .limit(limit)
        .with_for_update(of=Task, skip_locked=True)
    )
    if only is not None:
        query = query.where(Task.id.in_(only))
    return list((await session.execute(query)).scalars())


async def job_by_id(session: AsyncSession, job_id: uuid.UUID) -> Job | None:
    """One job."""
    return await session.get(Job, job_id)


async def ontology_spec(
    session: AsyncSession, ontology_id: uuid.UUID, version: int
) -> dict[str, Any]:
    """The spec of a pinned ontology version."""
    query = select(OntologyVersion.spec).where(
        OntologyVersion.ontology_id == ontology_id, OntologyVersion.version == version
    )
    spec: dict[str, Any] = (await session.execute(query)).scalar_one()
    return spec


async def assets_by_ids(
    session: AsyncSession, asset_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, KnownAsset]:
    """The assets mirror rows, by id."""
    if not asset_ids:
        return {}
    query = select(KnownAsset).where(KnownAsset.id.in_(set(asset_ids)))
    return {a.id: a for a in (await session.execute(query)).scalars()}


async def latest_predictions(
    session: AsyncSession, asset_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Each asset's most recent prediction shapes (one model's, not a mix of several)."""
    if not asset_ids:
        return {}
    query = (
        select(Prediction.asset_id, Prediction.shapes)
        .where(Prediction.asset_id.in_(set(asset_ids)))
        .distinct(Prediction.asset_id)
        .order_by(Prediction.asset_id, Prediction.created_at.desc())
    )
    return {row.asset_id: list(row.shapes) for row in await session.execute(query)}


async def job_vendors(
    session: AsyncSession, job_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Each job's vendors."""
    found: dict[uuid.UUID, list[uuid.UUID]] = {j: [] for j in job_ids}
    if not job_ids:
        return found
    query = select(JobVendor.job_id, JobVendor.vendor_id).where(JobVendor.job_id.in_(job_ids))
    for row in await session.execute(query):
        found[row.job_id].append(row.vendor_id)
    return found


async def insert_delivery(session: AsyncSession, delivery: Delivery) -> None:
    """A new delivery row."""
    session.add(delivery)
    await session.flush()


async def assign_tasks(
    session: AsyncSession,
    tasks: Sequence[Task],
    vendor_id: uuid.UUID,
    delivery_id: uuid.UUID,
) -> None:
    """Tasks into a delivery: each an open assignment (its current attempt) and ``assigned``."""
    if not tasks:
        return
    await session.execute(
        insert(Assignment),
        [
            {
                "task_id": t.id,
                "attempt": t.attempt,
                "vendor_id": vendor_id,
                "delivery_id": delivery_id,
                "outcome": "open",
            }
            for t in tasks
        ],
    )
    await session.execute(
        update(Task)
        .where(Task.id.in_([t.id for t in tasks]))
        .values(
            state="assigned",
            vendor_id=vendor_id,
            delivery_id=delivery_id,
            lease_expires_at=None,
            updated_at=func.now(),
        )
        .execution_options(synchronize_session=False)
    )


async def lapsed_tasks(session: AsyncSession, now: datetime, limit: int) -> list[Task]:
    """Dispatched tasks whose lease has run out, locked."""
    query = (
        select(Task)
        .where(Task.state == "dispatched", Task.lease_expires_at <= now)
        .order_by(Task.lease_expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(query)).scalars())


async def assigned_tasks_of(session: AsyncSession, delivery_id: uuid.UUID) -> list[Task]:
    """The tasks a delivery still carries (``assigned`` in it), locked."""
    query = (
        select(Task)
        .where(Task.delivery_id == delivery_id, Task.state == "assigned")
        .order_by(Task.id)
        .with_for_update()
    )
    return list((await session.execute(query)).scalars())


async def dispatch_tasks(
    session: AsyncSession, tasks: Sequence[Task], delivery_id: uuid.UUID, now: datetime
) -> dict[uuid.UUID, datetime]:
    """Acknowledged tasks: ``dispatched`` with their lease running from ``now``.

    Returns each task's lease end. Leases are per job, so tasks are updated one by one.
    """
    leases = {}
    lease_seconds = await _lease_seconds(session, {t.job_id for t in tasks})
    for task in tasks:
        until = now + timedelta(seconds=lease_seconds[task.job_id])
        task.state, task.dispatched_at, task.lease_expires_at = "dispatched", now, until
        task.updated_at = now
        leases[task.id] = until
    await session.flush()
    for task_id, until in leases.items():
        await session.execute(
            update(Assignment)
            .where(
                Assignment.task_id == task_id,
                Assignment.delivery_id == delivery_id,
                Assignment.outcome == "open",
            )
            .values(dispatched_at=now, lease_expires_at=until)
        )
    return leases


async def _lease_seconds(session: AsyncSession, job_ids: set[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not job_ids:
        return {}
    query = select(Job.id, Job.lease_seconds).where(Job.id.in_(job_ids))
    return {row.id: row.lease_seconds for row in await session.execute(query)}


async def release_tasks(
    session: AsyncSession,
    tasks: Sequence[Task],
    outcome: str,
    excluded: dict[uuid.UUID, list[uuid.UUID]],
    now: datetime,
) -> None:
    """Tasks a vendor lost (``outcome``: expired / failed) back to the queue, next attempt.

    Each task's open assignment is closed with ``outcome``; ``excluded`` gives each task's
    excluded vendors from now on.
    """
    for task in tasks:
        await session.execute(
            update(Assignment)
            .where(
                Assignment.task_id == task.id,
                Assignment.attempt == task.attempt,
                Assignment.outcome == "open",
            )
            .values(outcome=outcome, closed_at=now)
        )
        task.state, task.attempt = "queued", task.attempt + 1
        task.vendor_id = task.delivery_id = None
        task.lease_expires_at = task.dispatched_at = None
        task.excluded_vendors = excluded[task.id]
        task.updated_at = now
    await session.flush()


async def forget_exclusion(
    session: AsyncSession, tasks: Sequence[Task], vendor_id: uuid.UUID
) -> None:
    """``vendor_id`` no longer excluded from these tasks."""
    for task in tasks:
        task.excluded_vendors = [v for v in task.excluded_vendors or [] if v != vendor_id]
    await session.flush()
