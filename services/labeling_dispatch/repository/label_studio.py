"""Label Studio vendors' rows: their projects, and the stored versions of their annotations."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.labeling_dispatch.models import Annotation, Job, LabelStudioProject, Task, Vendor

projects = cast(Table, LabelStudioProject.__table__)
stored = cast(Table, Annotation.__table__)
tasks = cast(Table, Task.__table__)
jobs = cast(Table, Job.__table__)
vendors = cast(Table, Vendor.__table__)


@dataclass(frozen=True, slots=True)
class ProjectRow:
    """One pass of one job in Label Studio, with the vendor's server and token."""

    vendor_id: uuid.UUID
    job_id: uuid.UUID
    pass_no: int
    project_id: int
    webhook_id: int | None
    synced_until: datetime


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """The newest stored version of one vendor annotation (or of a task's answer)."""

    id: uuid.UUID
    task_id: uuid.UUID
    attempt: int
    annotator_id: str
    shapes: list[dict[str, Any]]
    version: int
    vendor_ref: str | None
    withdrawn_at: datetime | None


_PROJECT_COLUMNS = (
    projects.c.vendor_id,
    projects.c.job_id,
    projects.c.pass_no,
    projects.c.project_id,
    projects.c.webhook_id,
    projects.c.synced_until,
)


async def project(
    session: AsyncSession, vendor_id: uuid.UUID, job_id: uuid.UUID, pass_no: int
) -> ProjectRow | None:
    query = select(*_PROJECT_COLUMNS).where(
        projects.c.vendor_id == vendor_id,
        projects.c.job_id == job_id,
        projects.c.pass_no == pass_no,
    )
    row = (await session.execute(query)).first()
    return None if row is None else ProjectRow(*row)


async def lock_project_slot(
    session: AsyncSession, vendor_id: uuid.UUID, job_id: uuid.UUID, pass_no: int
) -> None:
    """Serialise the making of one project (two copies must not both create it), until the
    transaction ends."""
    key = f"label-studio-project:{vendor_id}:{job_id}:{pass_no}"
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})


async def insert_project(session: AsyncSession, row: ProjectRow) -> None:
    session.add(
        LabelStudioProject(
            vendor_id=row.vendor_id,
            job_id=row.job_id,
            pass_no=row.pass_no,
            project_id=row.project_id,
            webhook_id=row.webhook_id,
            synced_until=row.synced_until,
        )
    )


async def projects_to_sync(session: AsyncSession) -> list[ProjectRow]:
    """Every project of an enabled Label Studio vendor whose job is not cancelled."""
    query = (
        select(*_PROJECT_COLUMNS)
        .select_from(
            projects.join(vendors, vendors.c.id == projects.c.vendor_id).join(
                jobs, jobs.c.id == projects.c.job_id
            )
        )
        .where(vendors.c.enabled, jobs.c.state != "cancelled")
        .order_by(projects.c.created_at)
    )
    return [ProjectRow(*row) for row in await session.execute(query)]


async def projects_of_job(session: AsyncSession, job_id: uuid.UUID) -> list[ProjectRow]:
    query = (
        select(*_PROJECT_COLUMNS)
        .where(projects.c.job_id == job_id)
        .order_by(projects.c.vendor_id, projects.c.pass_no)
    )
    return [ProjectRow(*row) for row in await session.execute(query)]


async def projects_of_vendor(session: AsyncSession, vendor_id: uuid.UUID) -> list[ProjectRow]:
    query = select(*_PROJECT_COLUMNS).where(projects.c.vendor_id == vendor_id)
    return [ProjectRow(*row) for row in await session.execute(query)]


async def advance_cursor(session: AsyncSession, row: ProjectRow, synced_until: datetime) -> None:
    """Move a project's reconcile cursor forward (never back)."""
    await session.execute(
        update(projects)
        .where(
            projects.c.vendor_id == row.vendor_id,
            projects.c.job_id == row.job_id,
            projects.c.pass_no == row.pass_no,
            projects.c.synced_until < synced_until,
        )
        .values(synced_until=synced_until)
    )


_VERSION_COLUMNS = (
    stored.c.id,
    stored.c.task_id,
    stored.c.attempt,
    stored.c.annotator_id,
    stored.c.shapes,
    stored.c.version,
    stored.c.vendor_ref,
    stored.c.withdrawn_at,
)


async def latest_of_ref(
    session: AsyncSession, vendor_id: uuid.UUID, vendor_ref: str
) -> StoredVersion | None:
    """The newest stored version of the vendor's annotation ``vendor_ref``, locked."""
    query = (
        select(*_VERSION_COLUMNS)
        .where(stored.c.vendor_id == vendor_id, stored.c.vendor_ref == vendor_ref)
        .order_by(stored.c.version.desc())
        .limit(1)
        .with_for_update()
    )
    row = (await session.execute(query)).first()
    return None if row is None else StoredVersion(*row)


async def latest_of_task(
    session: AsyncSession, vendor_id: uuid.UUID, task_id: uuid.UUID
) -> StoredVersion | None:
    """The newest stored annotation of a task by this vendor (any Label Studio annotation)."""
    query = (
        select(*_VERSION_COLUMNS)
        .where(stored.c.vendor_id == vendor_id, stored.c.task_id == task_id)
        .order_by(stored.c.received_at.desc(), stored.c.version.desc())
        .limit(1)
        .with_for_update()
    )
    row = (await session.execute(query)).first()
    return None if row is None else StoredVersion(*row)


async def live_refs_of_tasks(
    session: AsyncSession, vendor_id: uuid.UUID, task_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, set[str]]:
    """Per task, the vendor annotations stored and not withdrawn (their newest versions)."""
    if not task_ids:
        return {}
    newest = (
        select(
            stored.c.task_id,
            stored.c.vendor_ref,
            stored.c.withdrawn_at,
            func.row_number()
            .over(partition_by=stored.c.vendor_ref, order_by=stored.c.version.desc())
            .label("rank"),
        )
        .where(
            stored.c.vendor_id == vendor_id,
            stored.c.task_id.in_(list(task_ids)),
            stored.c.vendor_ref.is_not(None),
        )
        .subquery()
    )
    query = select(newest.c.task_id, newest.c.vendor_ref).where(
        newest.c.rank == 1, newest.c.withdrawn_at.is_(None)
    )
    found: dict[uuid.UUID, set[str]] = {}
    for task_id, ref in await session.execute(query):
        found.setdefault(task_id, set()).add(ref)
    return found


async def withdraw(session: AsyncSession, annotation_id: uuid.UUID, when: datetime) -> None:
    await session.execute(
        update(stored).where(stored.c.id == annotation_id).values(withdrawn_at=when)
    )


async def annotator_answered_sibling(
    session: AsyncSession, task_id: uuid.UUID, annotator_id: str
) -> bool:
    """Whether ``annotator_id`` has a live answer to another replica of this task's asset in
    its job (replicas exist to be labeled by different people)."""
    this = tasks.alias("this")
    sibling = tasks.alias("sibling")
    query = (
        select(stored.c.id)
        .select_from(
            this.join(
                sibling,
                and_(
                    sibling.c.job_id == this.c.job_id,
                    sibling.c.asset_id == this.c.asset_id,
                    sibling.c.id != this.c.id,
                ),
            ).join(stored, stored.c.task_id == sibling.c.id)
        )
        .where(
            this.c.id == task_id,
            stored.c.annotator_id == annotator_id,
            stored.c.withdrawn_at.is_(None),
        )
        .limit(1)
    )
    return (await session.execute(query)).first() is not None
