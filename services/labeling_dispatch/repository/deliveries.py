"""Deliveries and their attempts: claiming due ones, recording tries, the delivery log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.labeling_dispatch.models import Delivery, DeliveryAttempt, Job, Vendor
from shared.paging import Cursor


@dataclass(frozen=True)
class DeliveryFilter:
    """What the delivery log is narrowed to; ``datasets`` None means every dataset."""

    vendor_id: uuid.UUID | None = None
    job_id: uuid.UUID | None = None
    status: str | None = None
    datasets: Sequence[uuid.UUID] | None = None


async def claim_due(
    session: AsyncSession, now: datetime, limit: int, hold_until: datetime
) -> list[tuple[Delivery, Vendor]]:
    """Up to ``limit`` pending deliveries due by ``now``, with their vendors.

    They are pushed to ``hold_until`` in the same transaction, so no other copy of the service
    sends them while this one does; if this one dies, they come due again then.
    """
    query = (
        select(Delivery, Vendor)
        .join(Vendor, Vendor.id == Delivery.vendor_id)
        .where(Delivery.status == "pending", Delivery.next_attempt_at <= now)
        .order_by(Delivery.next_attempt_at)
        .limit(limit)
        .with_for_update(of=Delivery, skip_locked=True)
    )
    rows = [(row.Delivery, row.Vendor) for row in await session.execute(query)]
    if rows:
        await session.execute(
            update(Delivery)
            .where(Delivery.id.in_([d.id for d, _ in rows]))
            .values(next_attempt_at=hold_until)
            .execution_options(synchronize_session=False)
        )
    return rows


async def delivery_for_update(session: AsyncSession, delivery_id: uuid.UUID) -> Delivery | None:
    """One delivery, locked."""
    query = select(Delivery).where(Delivery.id == delivery_id).with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def delivery_with_job(
    session: AsyncSession, delivery_id: uuid.UUID
) -> tuple[Delivery, Job] | None:
    """One delivery and its job (for the dataset a caller may see)."""
    query = (
        select(Delivery, Job).join(Job, Job.id == Delivery.job_id).where(Delivery.id == delivery_id)
    )
    row = (await session.execute(query)).one_or_none()
    return None if row is None else (row.Delivery, row.Job)


async def vendor_of(session: AsyncSession, vendor_id: uuid.UUID) -> Vendor | None:
    """A delivery's vendor."""
    return await session.get(Vendor, vendor_id)


async def add_attempt(
    session: AsyncSession,
    delivery: Delivery,
    *,
    at: datetime,
    status_code: int | None,
    latency_ms: float,
    error: str | None,
    manual: bool,
) -> None:
    """One more try in the log, and the delivery's summary of its last try."""
    delivery.attempts += 1
    await session.execute(
        insert(DeliveryAttempt).values(
            delivery_id=delivery.id,
            attempt=delivery.attempts,
            attempted_at=at,
            status_code=status_code,
            latency_ms=latency_ms,
            error=error,
            manual=manual,
        )
    )
    delivery.last_status_code = status_code
    delivery.last_latency_ms = latency_ms
    delivery.last_error = error
    await session.flush()


async def list_deliveries(
    session: AsyncSession, flt: DeliveryFilter, limit: int, after: Cursor | None
) -> list[Delivery]:
    """A page of deliveries, newest first."""
    query = select(Delivery)
    if flt.vendor_id is not None:
        query = query.where(Delivery.vendor_id == flt.vendor_id)
    if flt.job_id is not None:
        query = query.where(Delivery.job_id == flt.job_id)
    if flt.status is not None:
        query = query.where(Delivery.status == flt.status)
    if flt.datasets is not None:
        visible = select(Job.id).where(Job.dataset_id.in_(flt.datasets))
        query = query.where(Delivery.job_id.in_(visible))
    if after is not None:
        query = query.where(tuple_(Delivery.created_at, Delivery.id) < (after.created_at, after.id))
    query = query.order_by(Delivery.created_at.desc(), Delivery.id.desc()).limit(limit)
    return list((await session.execute(query)).scalars())


async def attempts_of(session: AsyncSession, delivery_id: uuid.UUID) -> list[DeliveryAttempt]:
    """Every try of a delivery, first first."""
    query = (
        select(DeliveryAttempt)
        .where(DeliveryAttempt.delivery_id == delivery_id)
        .order_by(DeliveryAttempt.attempt)
    )
    return list((await session.execute(query)).scalars())
