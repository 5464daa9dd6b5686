"""Jobs' routes: create (admin), list, read with progress, pause / resume / cancel (admin)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from services.labeling_dispatch.api.dependencies import (
    Admin,
    CursorParam,
    LabelingDep,
    Limit,
    Viewer,
)
from services.labeling_dispatch.use_cases import jobs
from services.labeling_dispatch.use_cases.jobs import GoldItemIn, JobRequest, JobView
from shared.errors import error_responses

router = APIRouter(tags=["jobs"])

JobState = Literal["open", "paused", "cancelled", "completed"]


class GoldItem(BaseModel):
    """A known-answer asset and its answer in canonical shapes."""

    model_config = ConfigDict(extra="forbid")

    asset_id: uuid.UUID
    shapes: list[dict[str, Any]] = Field(max_length=10_000)


class JobCreate(BaseModel):
    """A job: a dataset's images sent to vendors under one pinned ontology version."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")
    dataset: str = Field(min_length=1, max_length=63, description="slug or id")
    ontology: str = Field(min_length=1, max_length=128, description="id or name")
    ontology_version: int | None = Field(default=None, ge=1, description="default: the latest")
    vendor_ids: list[uuid.UUID] = Field(min_length=1, max_length=100)
    overlap: int = Field(default=1, ge=1, le=10, description="independent answers per asset")
    gold_ratio: float = Field(default=0.0, ge=0.0, le=0.5, description="gold share of tasks")
    gold_set: list[GoldItem] = Field(default_factory=list, max_length=10_000)
    priority: Literal["arrival", "uncertainty"] = "arrival"
    lease_seconds: int | None = Field(
        default=None, ge=1, le=30 * 24 * 3600, description="default: the service's setting"
    )


class VendorProgress(BaseModel):
    """How many tasks of a job are where, for one vendor (or none yet: ``vendor_id`` null)."""

    vendor_id: uuid.UUID | None
    queued: int = 0
    assigned: int = 0
    dispatched: int = 0
    submitted: int = 0
    rework: int = 0
    cancelled: int = 0
    expired: int = Field(default=0, description="assignments whose lease ran out")


class JobOut(BaseModel):
    """A job as people see it."""

    id: uuid.UUID
    name: str
    dataset_id: uuid.UUID
    ontology_id: uuid.UUID
    ontology_version: int
    vendor_ids: list[uuid.UUID]
    overlap: int
    gold_ratio: float
    priority: str
    lease_seconds: int
    state: JobState
    regular_tasks: int
    gold_tasks: int
    created_by: str
    created_at: datetime
    updated_at: datetime


class JobDetail(JobOut):
    """A job with its progress: task counts per state, per vendor, and in total."""

    progress: list[VendorProgress]
    total: VendorProgress


class JobPage(BaseModel):
    """One page of jobs; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[JobOut]
    next_cursor: str | None


def _out(view: JobView) -> JobOut:
    job = view.job
    return JobOut(
        id=job.id,
        name=job.name,
        dataset_id=job.dataset_id,
        ontology_id=job.ontology_id,
        ontology_version=job.ontology_version,
        vendor_ids=view.vendor_ids,
        overlap=job.overlap,
        gold_ratio=job.gold_ratio,
        priority=job.priority,
        lease_seconds=job.lease_seconds,
        state=job.state,
        regular_tasks=job.regular_tasks,
        gold_tasks=job.gold_tasks,
        created_by=job.created_by,
        created_at=job.created_at,
        updated_at=job.updated_at,
    )


def _detail(view: JobView) -> JobDetail:
    counts: dict[uuid.UUID | None, dict[str, int]] = defaultdict(dict)
    total: dict[str, int] = defaultdict(int)
    for row in view.progress:
        counts[row.vendor_id][row.state] = counts[row.vendor_id].get(row.state, 0) + row.count
        total[row.state] += row.count
    progress = [
        VendorProgress(vendor_id=vendor, **by_state)
        for vendor, by_state in sorted(counts.items(), key=lambda kv: str(kv[0] or ""))
    ]
    return JobDetail(
        **_out(view).model_dump(),
        progress=progress,
        total=VendorProgress(vendor_id=None, **total),
    )


@router.post(
    "/v1/jobs",
    status_code=201,
    summary="Create a labeling job (admin); the dataset's cleaned images are queued at once",
    responses=error_responses(401, 403, 404, 422),
)
async def create_job(body: JobCreate, principal: Admin, labeling: LabelingDep) -> JobDetail:
    request = JobRequest(
        name=body.name,
        dataset=body.dataset,
        ontology=body.ontology,
        ontology_version=body.ontology_version,
        vendor_ids=body.vendor_ids,
        overlap=body.overlap,
        gold_ratio=body.gold_ratio,
        gold_set=[GoldItemIn(g.asset_id, g.shapes) for g in body.gold_set],
        priority=body.priority,
        lease_seconds=body.lease_seconds,
    )
    created = await jobs.create_job(labeling, principal, request)
    return _detail(await jobs.get_job(labeling, principal, created.job.id))


@router.get("/v1/jobs", summary="List jobs", responses=error_responses(400, 401, 403, 404, 422))
async def list_jobs(
    principal: Viewer,
    labeling: LabelingDep,
    limit: Limit = 50,
    cursor: CursorParam = None,
    dataset: str | None = Query(default=None, description="slug or id"),
    state: JobState | None = None,
) -> JobPage:
    views, next_cursor = await jobs.list_jobs(
        labeling, principal, limit, cursor, dataset=dataset, state=state
    )
    return JobPage(items=[_out(v) for v in views], next_cursor=next_cursor)


@router.get(
    "/v1/jobs/{job_id}",
    summary="A job with its progress per vendor",
    responses=error_responses(401, 403, 404, 422),
)
async def get_job(job_id: uuid.UUID, principal: Viewer, labeling: LabelingDep) -> JobDetail:
    return _detail(await jobs.get_job(labeling, principal, job_id))


async def _move(
    labeling: LabelingDep,
    principal: Admin,
    job_id: uuid.UUID,
    target: Literal["open", "paused", "cancelled"],
) -> JobDetail:
    await jobs.change_job_state(labeling, principal, job_id, target)
    return _detail(await jobs.get_job(labeling, principal, job_id))


STATE_ERRORS = error_responses(401, 403, 404, 409, 422)


@router.post(
    "/v1/jobs/{job_id}/pause",
    summary="Pause a job: nothing new is sent (admin)",
    responses=STATE_ERRORS,
)
async def pause_job(job_id: uuid.UUID, principal: Admin, labeling: LabelingDep) -> JobDetail:
    return await _move(labeling, principal, job_id, "paused")


@router.post(
    "/v1/jobs/{job_id}/resume", summary="Resume a paused job (admin)", responses=STATE_ERRORS
)
async def resume_job(job_id: uuid.UUID, principal: Admin, labeling: LabelingDep) -> JobDetail:
    return await _move(labeling, principal, job_id, "open")


@router.post(
    "/v1/jobs/{job_id}/cancel",
    summary="Cancel a job and its open tasks (admin)",
    responses=STATE_ERRORS,
)
async def cancel_job(job_id: uuid.UUID, principal: Admin, labeling: LabelingDep) -> JobDetail:
    return await _move(labeling, principal, job_id, "cancelled")
