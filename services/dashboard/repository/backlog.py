"""Reads of the projections for the backlog and vendors pages: dead letters, tasks out with
each vendor, tasks queued per job, the vendors themselves."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.dashboard.models import dead_letters, jobs, tasks, vendors

# Task states that mean "with a vendor": sent out, or sent back to be done again.
OUT_WITH_VENDOR = ("dispatched", "rework")


async def dead_letter_page(session: AsyncSession, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """How many dead letters there are, and the newest ``limit`` of them."""
    d = dead_letters
    count = await session.scalar(select(func.count()).select_from(d))
    rows = await session.execute(
        select(
            d.c.event_id,
            d.c.at,
            d.c.consumer_group,
            d.c.original_topic,
            d.c.original_partition,
            d.c.original_offset,
            d.c.original_type,
            d.c.original_event_id,
            d.c.error,
        )
        .order_by(d.c.at.desc(), d.c.event_id.desc())
        .limit(limit)
    )
    return int(count or 0), [dict(row._mapping) for row in rows]


async def tasks_per_vendor(
    session: AsyncSession, visible: Sequence[uuid.UUID] | None
) -> list[dict[str, Any]]:
    """Every vendor with its tasks out (dispatched, in rework); vendors the tasks name but
    whose creation was not read yet come with no name."""
    t = tasks
    counts = select(
        t.c.vendor_id,
        func.count().filter(t.c.state == "dispatched").label("dispatched"),
        func.count().filter(t.c.state == "rework").label("rework"),
    ).where(t.c.state.in_(OUT_WITH_VENDOR), t.c.vendor_id.is_not(None))
    if visible is not None:
        counts = counts.where(
            t.c.job_id.in_(select(jobs.c.job_id).where(jobs.c.dataset_id.in_(visible)))
        )
    c = counts.group_by(t.c.vendor_id).subquery()
    query = (
        select(
            func.coalesce(vendors.c.vendor_id, c.c.vendor_id).label("vendor_id"),
            vendors.c.name,
            vendors.c.kind,
            vendors.c.capacity,
            func.coalesce(c.c.dispatched, 0).label("dispatched"),
            func.coalesce(c.c.rework, 0).label("rework"),
        )
        .select_from(vendors.join(c, c.c.vendor_id == vendors.c.vendor_id, full=True))
        .order_by(
            (func.coalesce(c.c.dispatched, 0) + func.coalesce(c.c.rework, 0)).desc(),
            vendors.c.name,
        )
    )
    return [dict(row._mapping) for row in await session.execute(query)]


async def queued_per_job(
    session: AsyncSession, visible: Sequence[uuid.UUID] | None, limit: int
) -> list[dict[str, Any]]:
    """Jobs with their queued tasks (waiting for a vendor), most queued first."""
    t = tasks
    queued = (
        select(t.c.job_id, func.count().label("queued"))
        .where(t.c.state == "queued")
        .group_by(t.c.job_id)
        .subquery()
    )
    query = (
        select(
            jobs.c.job_id,
            jobs.c.name,
            jobs.c.dataset_id,
            jobs.c.state,
            func.coalesce(queued.c.queued, 0).label("queued"),
        )
        .select_from(jobs.outerjoin(queued, queued.c.job_id == jobs.c.job_id))
        .order_by(func.coalesce(queued.c.queued, 0).desc(), jobs.c.created_at.desc())
        .limit(limit)
    )
    if visible is not None:
        query = query.where(jobs.c.dataset_id.in_(visible))
    return [dict(row._mapping) for row in await session.execute(query)]


async def list_vendors(
    session: AsyncSession, visible: Sequence[uuid.UUID] | None
) -> list[dict[str, Any]]:
    """Vendors by name; for a key limited to some datasets (or a page narrowed to one), only
    the vendors with tasks in them."""
    query = select(vendors.c.vendor_id, vendors.c.name, vendors.c.kind, vendors.c.capacity)
    if visible is not None:
        worked = (
            select(tasks.c.vendor_id)
            .join(jobs, jobs.c.job_id == tasks.c.job_id)
            .where(jobs.c.dataset_id.in_(visible), tasks.c.vendor_id.is_not(None))
        )
        query = query.where(vendors.c.vendor_id.in_(worked))
    return [dict(row._mapping) for row in await session.execute(query.order_by(vendors.c.name))]
