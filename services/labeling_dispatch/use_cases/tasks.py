"""Tasks as people see them: lists by job, vendor, state or asset, and one task's history."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from services.labeling_dispatch.context import Labeling
from services.labeling_dispatch.models import Assignment, Job, Task
from services.labeling_dispatch.repository import tasks as repo
from services.labeling_dispatch.repository.tasks import TaskFilter
from shared.auth import Principal
from shared.errors import ApiError
from shared.paging import Cursor


@dataclass(frozen=True)
class TaskHistory:
    """A task, its job and every hand-over of it to a vendor."""

    task: Task
    job: Job
    assignments: list[Assignment]


async def list_tasks(
    labeling: Labeling,
    principal: Principal,
    limit: int,
    cursor: str | None,
    where: TaskFilter,
) -> tuple[list[Task], str | None]:
    """A page of the tasks the caller may see, and the cursor of the next page."""
    after = Cursor.decode(cursor) if cursor else None
    if principal.datasets is not None:
        where = TaskFilter(
            job_id=where.job_id,
            vendor_id=where.vendor_id,
            state=where.state,
            asset_id=where.asset_id,
            datasets=[uuid.UUID(d) for d in principal.datasets],
        )
    async with labeling.units.read() as session:
        rows = await repo.list_tasks(session, limit + 1, after, where)
    next_cursor = None
    if len(rows) > limit:
        next_cursor = Cursor(rows[limit - 1].created_at, rows[limit - 1].id).encode()
    return rows[:limit], next_cursor


async def task_history(labeling: Labeling, principal: Principal, task_id: uuid.UUID) -> TaskHistory:
    """A task the caller may see with its assignments; 404 otherwise."""
    async with labeling.units.read() as session:
        found = await repo.task_with_job(session, task_id)
        if found is None or not principal.sees(found[1].dataset_id):
            raise ApiError(404, "task_not_found", f"no task {task_id}")
        assignments = await repo.assignments_of(session, task_id)
    return TaskHistory(found[0], found[1], assignments)
