"""Tasks as people see them, their creation in bulk, cancellation and re-prioritising."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.labeling_dispatch.models import Assignment, Job, Task
from shared.paging import Cursor


async def insert_tasks(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Add tasks in one executemany (each row: every column but the defaulted times)."""
    if rows:
        await session.execute(insert(Task), list(rows))


async def assets_with_tasks(
    session: AsyncSession, job_id: uuid.UUID, asset_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of these assets already have (regular) tasks in the job."""
    if not asset_ids:
        return set()
    query = (
        select(Task.asset_id)
        .where(Task.job_id == job_id, Task.asset_id.in_(asset_ids), Task.gold.is_(False))
        .distinct()
    )
    return set((await session.execute(query)).scalars())


async def cancel_open_tasks(session: AsyncSession, job_id: uuid.UUID, states: Sequence[str]) -> int:
    """Cancel a job's tasks in ``states`` and close their open assignments; how many."""
    cancelled = await session.execute(
        update(Task)
        .where(Task.job_id == job_id, Task.state.in_(states))
        .values(state="cancelled", updated_at=func.now(), lease_expires_at=None)
        .returning(Task.id)
    )
    ids = list(cancelled.scalars())
    if ids:
        await session.execute(
            update(Assignment)
            .where(Assignment.task_id.in_(ids), Assignment.outcome == "open")
            .values(outcome="cancelled", closed_at=func.now())
        )
    return len(ids)


async def reprioritise_queued(session: AsyncSession, asset_id: uuid.UUID, score: float) -> int:
    """Give the queued tasks of ``uncertainty`` jobs on this asset a new score; how many."""
    uncertain_jobs = select(Job.id).where(Job.priority == "uncertainty")
    changed = await session.execute(
        update(Task)
        .where(Task.asset_id == asset_id, Task.state == "queued", Task.job_id.in_(uncertain_jobs))
        .values(priority_score=score)
        .returning(Task.id)
    )
    return len(changed.all())


@dataclass(frozen=True)
class Progress:
    """How many of a vendor's (or no vendor's yet) tasks of a job are in one state."""

    vendor_id: uuid.UUID | None
    state: str
    count: int


async def job_progress(session: AsyncSession, job_id: uuid.UUID) -> list[Progress]:
    """Task counts per (current vendor, state), plus ``expired`` assignments per vendor."""
    by_state = (
        select(Task.vendor_id, Task.state, func.count())
        .where(Task.job_id == job_id)
        .group_by(Task.vendor_id, Task.state)
    )
    expired = (
        select(Assignment.vendor_id, func.count())
        .join(Task, Task.id == Assignment.task_id)
        .where(Task.job_id == job_id, Assignment.outcome == "expired")
        .group_by(Assignment.vendor_id)
    )
    found = [Progress(v, s, n) for v, s, n in (await session.execute(by_state)).all()]
    found += [Progress(v, "expired", n) for v, n in (await session.execute(expired)).all()]
    return found


@dataclass(frozen=True)
class TaskFilter:
    """What a task list is limited to (None: anything)."""

    job_id: uuid.UUID | None = None
    vendor_id: uuid.UUID | None = None
    state: str | None = None
    asset_id: uuid.UUID | None = None
    # the datasets the caller may see (None: all)
    datasets: Sequence[uuid.UUID] | None = None


async def list_tasks(
    session: AsyncSession, limit: int, after: Cursor | None, where: TaskFilter
) -> list[Task]:
    """A page of tasks, oldest first."""
    query = select(Task).order_by(Task.created_at, Task.id).limit(limit)
    if after is not None:
        query = query.where(tuple_(Task.created_at, Task.id) > (after.created_at, after.id))
    if where.job_id is not None:
        query = query.where(Task.job_id == where.job_id)
    if where.vendor_id is not None:
        query = query.where(Task.vendor_id == where.vendor_id)
    if where.state is not None:
        query = query.where(Task.state == where.state)
    if where.asset_id is not None:
        query = query.where(Task.asset_id == where.asset_id)
    if where.datasets is not None:
        visible = select(Job.id).where(Job.dataset_id.in_(where.datasets))
        query = query.where(Task.job_id.in_(visible))
    return list((await session.execute(query)).scalars())


async def task_with_job(session: AsyncSession, task_id: uuid.UUID) -> tuple[Task, Job] | None:
    """A task and its job."""
    query = select(Task, Job).join(Job, Job.id == Task.job_id).where(Task.id == task_id)
    row = (await session.execute(query)).first()
    return None if row is None else (row[0], row[1])


async def assignments_of(session: AsyncSession, task_id: uuid.UUID) -> list[Assignment]:
    """A task's hand-overs to vendors, first first."""
    query = select(Assignment).where(Assignment.task_id == task_id).order_by(Assignment.attempt)
    return list((await session.execute(query)).scalars())
