"""Tasks for people: list by job, vendor, state or asset; one task with its hand-overs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from services.labeling_dispatch.api.dependencies import CursorParam, LabelingDep, Limit, Viewer
from services.labeling_dispatch.repository.tasks import TaskFilter
from services.labeling_dispatch.use_cases import tasks
from shared.errors import error_responses

router = APIRouter(tags=["tasks"])

TaskState = Literal["queued", "assigned", "dispatched", "submitted", "rework", "cancelled"]


class TaskOut(BaseModel):
    """A task: one replica of one asset in one job, and where it is."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    job_id: uuid.UUID
    asset_id: uuid.UUID
    replica: int
    gold: bool
    state: TaskState
    priority_score: float
    vendor_id: uuid.UUID | None
    excluded_vendors: list[uuid.UUID]
    attempt: int
    delivery_id: uuid.UUID | None
    lease_expires_at: datetime | None
    rework_comment: str | None
    created_at: datetime
    dispatched_at: datetime | None
    submitted_at: datetime | None
    updated_at: datetime


class AssignmentOut(BaseModel):
    """One hand-over of a task to a vendor and how it ended."""

    model_config = ConfigDict(from_attributes=True)

    attempt: int
    vendor_id: uuid.UUID
    delivery_id: uuid.UUID
    outcome: Literal["open", "answered", "expired", "failed", "cancelled"]
    assigned_at: datetime
    dispatched_at: datetime | None
    lease_expires_at: datetime | None
    closed_at: datetime | None


class TaskDetail(TaskOut):
    """A task with its dataset and every assignment, first first."""

    dataset_id: uuid.UUID
    assignments: list[AssignmentOut]


class TaskPage(BaseModel):
    """One page of tasks; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[TaskOut]
    next_cursor: str | None


@router.get("/v1/tasks", summary="List tasks", responses=error_responses(400, 401, 403, 422))
async def list_tasks(
    principal: Viewer,
    labeling: LabelingDep,
    limit: Limit = 50,
    cursor: CursorParam = None,
    job_id: uuid.UUID | None = None,
    vendor_id: uuid.UUID | None = None,
    state: TaskState | None = None,
    asset_id: uuid.UUID | None = None,
) -> TaskPage:
    where = TaskFilter(job_id=job_id, vendor_id=vendor_id, state=state, asset_id=asset_id)
    rows, next_cursor = await tasks.list_tasks(labeling, principal, limit, cursor, where)
    return TaskPage(items=[TaskOut.model_validate(t) for t in rows], next_cursor=next_cursor)


@router.get(
    "/v1/tasks/{task_id}",
    summary="A task with its assignments",
    responses=error_responses(401, 403, 404, 422),
)
async def get_task(task_id: uuid.UUID, principal: Viewer, labeling: LabelingDep) -> TaskDetail:
    history = await tasks.task_history(labeling, principal, task_id)
    return TaskDetail(
        **TaskOut.model_validate(history.task).model_dump(),
        dataset_id=history.job.dataset_id,
        assignments=[AssignmentOut.model_validate(a) for a in history.assignments],
    )
