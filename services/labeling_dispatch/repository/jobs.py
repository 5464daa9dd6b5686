"""Jobs, their vendors and gold sets; the ontology rows a job pins."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.labeling_dispatch.models import (
    GoldItem,
    Job,
    JobVendor,
    KnownAsset,
)
from shared.paging import Cursor


async def insert_job(
    session: AsyncSession,
    job: Job,
    vendor_ids: Sequence[uuid.UUID],
    gold: Sequence[tuple[uuid.UUID, list[dict[str, Any]]]],
) -> None:
    """Add a job with its vendors and its gold set."""
    session.add(job)
    await session.flush()
    await session.execute(
        insert(JobVendor), [{"job_id": job.id, "vendor_id": v} for v in vendor_ids]
    )
    if gold:
        await session.execute(
            insert(GoldItem),
            [{"job_id": job.id, "asset_id": a, "shapes": s, "uses": 0} for a, s in gold],
        )


async def job_by_id(session: AsyncSession, job_id: uuid.UUID, *, lock: bool = False) -> Job | None:
    """The job with this id; ``lock`` holds its row until the transaction ends."""
    query = select(Job).where(Job.id == job_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def jobs_taking_assets(session: AsyncSession, dataset_ids: Sequence[uuid.UUID]) -> list[Job]:
    """The open and paused jobs of these datasets, rows locked (their counters will change)."""
    if not dataset_ids:
        return []
    query = (
        select(Job)
        .where(Job.dataset_id.in_(dataset_ids), Job.state.in_(("open", "paused")))
        .order_by(Job.id)  # one lock order everywhere
        .with_for_update()
    )
    return list((await session.execute(query)).scalars())


async def vendor_ids_of(
    session: AsyncSession, job_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Each job's vendor ids."""
    found: dict[uuid.UUID, list[uuid.UUID]] = {j: [] for j in job_ids}
    if job_ids:
        query = select(JobVendor.job_id, JobVendor.vendor_id).where(JobVendor.job_id.in_(job_ids))
        for job_id, vendor_id in (await session.execute(query)).all():
            found[job_id].append(vendor_id)
    return found


async def list_jobs(
    session: AsyncSession,
    limit: int,
    after: Cursor | None,
    *,
    dataset_id: uuid.UUID | None,
    state: str | None,
    only: Sequence[uuid.UUID] | None,
) -> list[Job]:
    """A page of jobs, oldest first; ``only`` limits to these datasets."""
    query = select(Job).order_by(Job.created_at, Job.id).limit(limit)
    if after is not None:
        query = query.where(tuple_(Job.created_at, Job.id) > (after.created_at, after.id))
    if dataset_id is not None:
        query = query.where(Job.dataset_id == dataset_id)
    if state is not None:
        query = query.where(Job.state == state)
    if only is not None:
        query = query.where(Job.dataset_id.in_(only))
    return list((await session.execute(query)).scalars())


async def set_job_state(session: AsyncSession, job_id: uuid.UUID, state: str) -> None:
    """Move a job to ``state``."""
    await session.execute(
        update(Job).where(Job.id == job_id).values(state=state, updated_at=func.now())
    )


async def add_task_counts(
    session: AsyncSession, job_id: uuid.UUID, regular: int, gold: int
) -> None:
    """Count newly queued regular and gold tasks into the job's running totals."""
    await session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(regular_tasks=Job.regular_tasks + regular, gold_tasks=Job.gold_tasks + gold)
    )


async def gold_uses(session: AsyncSession, job_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """How often each gold item of a job was drawn."""
    query = select(GoldItem.asset_id, GoldItem.uses).where(GoldItem.job_id == job_id)
    return {asset_id: uses for asset_id, uses in (await session.execute(query)).all()}


async def count_gold_uses(
    session: AsyncSession, job_id: uuid.UUID, drawn: dict[uuid.UUID, int]
) -> None:
    """Add the draws to the gold items' use counts."""
    for asset_id, times in drawn.items():
        await session.execute(
            update(GoldItem)
            .where(GoldItem.job_id == job_id, GoldItem.asset_id == asset_id)
            .values(uses=GoldItem.uses + times)
        )


async def gold_answers(
    session: AsyncSession, job_id: uuid.UUID
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """The known answer (canonical shapes) of each asset of a job's gold set."""
    query = select(GoldItem.asset_id, GoldItem.shapes).where(GoldItem.job_id == job_id)
    return {asset_id: list(shapes) for asset_id, shapes in (await session.execute(query)).all()}


async def gold_assets(session: AsyncSession, job_id: uuid.UUID) -> list[KnownAsset]:
    """The assets of a job's gold set."""
    query = (
        select(KnownAsset)
        .join(GoldItem, GoldItem.asset_id == KnownAsset.id)
        .where(GoldItem.job_id == job_id)
    )
    return list((await session.execute(query)).scalars())
