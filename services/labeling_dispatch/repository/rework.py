"""What sending answered tasks back for rework reads: the tasks, and who holds their replicas."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.labeling_dispatch.models import Assignment, Task


async def tasks_of_job(
    session: AsyncSession, job_id: uuid.UUID, task_ids: Sequence[uuid.UUID]
) -> list[Task]:
    """The job's tasks among ``task_ids``, locked (a webhook answering one waits), by replica."""
    if not task_ids:
        return []
    query = (
        select(Task)
        .where(Task.job_id == job_id, Task.id.in_(set(task_ids)))
        .order_by(Task.asset_id, Task.replica)
        .with_for_update()
    )
    return list((await session.execute(query)).scalars())


async def replica_holders(
    session: AsyncSession, job_id: uuid.UUID, asset_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[uuid.UUID, set[uuid.UUID]]]:
    """Per asset, per task of the job: the vendors holding it or having answered it (what keeps
    a vendor from another replica of the same asset when the job has several vendors)."""
    found: dict[uuid.UUID, dict[uuid.UUID, set[uuid.UUID]]] = {a: {} for a in asset_ids}
    if not asset_ids:
        return found
    query = (
        select(Task.asset_id, Task.id, Assignment.vendor_id)
        .join(Assignment, Assignment.task_id == Task.id)
        .where(
            Task.job_id == job_id,
            Task.asset_id.in_(set(asset_ids)),
            Assignment.outcome.in_(("open", "answered")),
        )
    )
    for row in await session.execute(query):
        found[row.asset_id].setdefault(row.id, set()).add(row.vendor_id)
    return found
