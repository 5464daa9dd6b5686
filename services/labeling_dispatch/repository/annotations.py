"""Inbound answers: webhook receipts, annotations, refused requests, and the task rows they touch.

The webhook's hot path runs here as SQLAlchemy Core statements (no ORM objects loaded) and in as
few round trips as possible: the receipt insert is the replay check, one query loads every
task of a request with its job, asset and this vendor's latest assignment, and one statement
closes the assignments and submits the tasks together.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    DateTime,
    Integer,
    Row,
    Table,
    Text,
    and_,
    bindparam,
    column,
    func,
    insert,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import TableValuedAlias
from sqlalchemy.types import TypeEngine

from services.labeling_dispatch.models import (
    Annotation,
    Assignment,
    Job,
    KnownAsset,
    RefusedRequest,
    Task,
    Vendor,
    WebhookReceipt,
)
from shared.paging import Cursor

receipts = cast(Table, WebhookReceipt.__table__)
stored_annotations = cast(Table, Annotation.__table__)
refusals = cast(Table, RefusedRequest.__table__)
tasks = cast(Table, Task.__table__)
assignments = cast(Table, Assignment.__table__)
jobs = cast(Table, Job.__table__)
assets = cast(Table, KnownAsset.__table__)
vendors = cast(Table, Vendor.__table__)


@dataclass(frozen=True, slots=True)
class VendorCredentials:
    """What authenticating a vendor needs: whether it may call, and the secret it signs with."""

    id: uuid.UUID
    name: str
    enabled: bool
    secret: str


async def vendor_credentials(
    session: AsyncSession, vendor_id: uuid.UUID
) -> VendorCredentials | None:
    """The vendor's enabled flag and HMAC secret."""
    query = select(vendors.c.id, vendors.c.name, vendors.c.enabled, vendors.c.secret).where(
        vendors.c.id == vendor_id
    )
    row = (await session.execute(query)).first()
    return None if row is None else VendorCredentials(*row)


@dataclass(frozen=True, slots=True)
class TaskToAnswer:
    """A task as an answer to it needs it: its job, asset, and this vendor's latest assignment."""

    task_id: uuid.UUID
    task_state: str
    task_attempt: int
    job_id: uuid.UUID
    asset_id: uuid.UUID
    dataset_id: uuid.UUID
    replica: int
    gold: bool
    ontology_id: uuid.UUID
    ontology_version: int
    width: int | None
    height: int | None
    traceparent: str | None
    attempt: int
    outcome: str
    assigned_at: datetime
    dispatched_at: datetime | None
    lease_expires_at: datetime | None


async def claim_receipt(
    session: AsyncSession, vendor_id: uuid.UUID, delivery_id: str, response: dict[str, Any]
) -> bool:
    """Record a delivery id as accepted; False when it was already (a replay).

    The primary key decides between two concurrent requests with the same id: the second waits
    for the first's transaction and then finds the conflict (or, if the first rolled back,
    takes its place).
    """
    stmt = (
        pg_insert(receipts)
        .values(vendor_id=vendor_id, delivery_id=delivery_id, response=response)
        .on_conflict_do_nothing(index_elements=[receipts.c.vendor_id, receipts.c.delivery_id])
        .returning(receipts.c.delivery_id)
    )
    return (await session.execute(stmt)).first() is not None


async def receipt_response(
    session: AsyncSession, vendor_id: uuid.UUID, delivery_id: str
) -> dict[str, Any] | None:
    """What the first request with this delivery id was answered."""
    query = select(receipts.c.response).where(
        receipts.c.vendor_id == vendor_id, receipts.c.delivery_id == delivery_id
    )
    response: dict[str, Any] | None = (await session.execute(query)).scalar_one_or_none()
    return response


async def known_receipts(
    session: AsyncSession, vendor_id: uuid.UUID, delivery_ids: Sequence[str]
) -> set[str]:
    """Which of these delivery ids (receipt keys) the vendor has a receipt of."""
    if not delivery_ids:
        return set()
    query = select(receipts.c.delivery_id).where(
        receipts.c.vendor_id == vendor_id, receipts.c.delivery_id.in_(list(delivery_ids))
    )
    return set((await session.execute(query)).scalars())


# Built once: constructing this statement (a lateral subquery) cost more CPU per webhook than
# running it.
_latest = (
    select(
        assignments.c.attempt,
        assignments.c.outcome,
        assignments.c.assigned_at,
        assignments.c.dispatched_at,
        assignments.c.lease_expires_at,
    )
    .where(assignments.c.task_id == tasks.c.id, assignments.c.vendor_id == bindparam("vendor_id"))
    .order_by(assignments.c.attempt.desc())
    .limit(1)
    .lateral("latest")
)
_TASKS_TO_ANSWER = (
    select(
        tasks.c.id,
        tasks.c.state,
        tasks.c.attempt.label("task_attempt"),
        tasks.c.job_id,
        tasks.c.asset_id,
        jobs.c.dataset_id,
        tasks.c.replica,
        tasks.c.gold,
        jobs.c.ontology_id,
        jobs.c.ontology_version,
        assets.c.width,
        assets.c.height,
        assets.c.traceparent,
        _latest.c.attempt,
        _latest.c.outcome,
        _latest.c.assigned_at,
        _latest.c.dispatched_at,
        _latest.c.lease_expires_at,
    )
    .select_from(
        tasks.join(jobs, jobs.c.id == tasks.c.job_id)
        .outerjoin(assets, assets.c.id == tasks.c.asset_id)
        .join(_latest, true())
    )
    .where(tasks.c.id.in_(bindparam("task_ids", expanding=True)))
)


async def tasks_to_answer(
    session: AsyncSession, vendor_id: uuid.UUID, task_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, TaskToAnswer]:
    """The tasks among ``task_ids`` this vendor holds or held, with what answering them needs.

    A task the vendor never had an assignment of is missing from the answer, exactly like an
    unknown id, so another vendor's task ids do not leak.
    """
    values = {"vendor_id": vendor_id, "task_ids": list(task_ids)}
    return {row.id: TaskToAnswer(*row) for row in await session.execute(_TASKS_TO_ANSWER, values)}


async def submit_tasks(
    session: AsyncSession,
    vendor_id: uuid.UUID,
    held: Sequence[tuple[uuid.UUID, int]],
    now: datetime,
) -> set[uuid.UUID]:
    """Close the open ``(task id, attempt)`` assignments as answered and submit their tasks.

    One statement; returns the tasks it submitted. A task missing from the answer was closed
    (answered, expired) by someone else since it was read: the caller rolls back.
    """
    answered = (
        update(assignments)
        .where(
            tuple_(assignments.c.task_id, assignments.c.attempt).in_(list(held)),
            assignments.c.vendor_id == vendor_id,
            assignments.c.outcome == "open",
        )
        .values(outcome="answered", closed_at=now)
        .returning(assignments.c.task_id, assignments.c.attempt)
        .cte("answered")
    )
    stmt = (
        update(tasks)
        .where(
            and_(tasks.c.id == answered.c.task_id, tasks.c.attempt == answered.c.attempt),
            tasks.c.state.in_(("assigned", "dispatched")),
        )
        .values(state="submitted", submitted_at=now, updated_at=now)
        .returning(tasks.c.id)
    )
    return set((await session.execute(stmt)).scalars())


def _rows(name: str, **types: TypeEngine[Any]) -> TableValuedAlias:
    """Rows passed as one array per column (bind parameter ``each_<column>``): the statement
    is the same whatever the number of rows, so it is built once."""
    arrays = [bindparam(f"each_{key}", type_=ARRAY(type_)) for key, type_ in types.items()]
    columns = [column(key, type_) for key, type_ in types.items()]
    return func.unnest(*arrays).table_valued(*columns).render_derived(name)


# For answers committed together.
_claimed_rows = _rows("claimed", vendor_id=UUID(as_uuid=True), delivery_id=Text(), response=Text())
_CLAIM_RECEIPTS = (
    pg_insert(receipts)
    .from_select(
        ["vendor_id", "delivery_id", "response"],
        select(
            _claimed_rows.c.vendor_id,
            _claimed_rows.c.delivery_id,
            _claimed_rows.c.response.cast(JSONB),
        ),
    )
    .on_conflict_do_nothing(index_elements=[receipts.c.vendor_id, receipts.c.delivery_id])
    .returning(receipts.c.vendor_id, receipts.c.delivery_id)
)
_held_rows = _rows(
    "held",
    task_id=UUID(as_uuid=True),
    attempt=Integer(),
    vendor_id=UUID(as_uuid=True),
    closed_at=DateTime(timezone=True),
)
_answered_many = (
    update(assignments)
    .where(
        assignments.c.task_id == _held_rows.c.task_id,
        assignments.c.attempt == _held_rows.c.attempt,
        assignments.c.vendor_id == _held_rows.c.vendor_id,
        assignments.c.outcome == "open",
    )
    .values(outcome="answered", closed_at=_held_rows.c.closed_at)
    .returning(assignments.c.task_id, assignments.c.attempt, assignments.c.closed_at)
    .cte("answered")
)
_SUBMIT_MANY = (
    update(tasks)
    .where(
        tasks.c.id == _answered_many.c.task_id,
        tasks.c.attempt == _answered_many.c.attempt,
        tasks.c.state.in_(("assigned", "dispatched")),
    )
    .values(
        state="submitted",
        submitted_at=_answered_many.c.closed_at,
        updated_at=_answered_many.c.closed_at,
    )
    .returning(tasks.c.id)
)


async def claim_receipts(
    session: AsyncSession, claims: Sequence[tuple[uuid.UUID, str, str]]
) -> set[tuple[uuid.UUID, str]]:
    """:func:`claim_receipt` for many ``(vendor id, delivery id, response as JSON text)`` in one
    statement: the (vendor id, delivery id) pairs claimed; the others are replays.

    The delivery ids must be distinct per vendor (one statement cannot say which of two equal
    ones it took).
    """
    values = {
        "each_vendor_id": [v for v, _, _ in claims],
        "each_delivery_id": [d for _, d, _ in claims],
        "each_response": [r for _, _, r in claims],
    }
    return {(v, d) for v, d in await session.execute(_CLAIM_RECEIPTS, values)}


async def submit_held_tasks(
    session: AsyncSession, held: Sequence[tuple[uuid.UUID, int, uuid.UUID, datetime]]
) -> set[uuid.UUID]:
    """:func:`submit_tasks` for many vendors' ``(task id, attempt, vendor id, now)`` in one
    statement; returns the tasks it submitted (a task missing was closed meanwhile)."""
    values = {
        "each_task_id": [t for t, _, _, _ in held],
        "each_attempt": [a for _, a, _, _ in held],
        "each_vendor_id": [v for _, _, v, _ in held],
        "each_closed_at": [n for _, _, _, n in held],
    }
    return set((await session.execute(_SUBMIT_MANY, values)).scalars())


_INSERT_ANNOTATIONS = insert(stored_annotations)


async def insert_annotations(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Store annotations (one multi-row insert)."""
    await session.execute(_INSERT_ANNOTATIONS, list(rows))


async def insert_refusal(session: AsyncSession, row: dict[str, Any]) -> None:
    """Store one refused request."""
    await session.execute(insert(refusals).values(**row))


async def task_dataset(session: AsyncSession, task_id: uuid.UUID) -> uuid.UUID | None:
    """The dataset of a task's job (None: no such task), for people's dataset scopes."""
    query = (
        select(jobs.c.dataset_id)
        .select_from(tasks.join(jobs, jobs.c.id == tasks.c.job_id))
        .where(tasks.c.id == task_id)
    )
    dataset: uuid.UUID | None = (await session.execute(query)).scalar_one_or_none()
    return dataset


async def annotations_of_task(
    session: AsyncSession, task_id: uuid.UUID, limit: int, after: Cursor | None
) -> Sequence[Row[Any]]:
    """A page of a task's annotations, oldest first."""
    query = (
        select(stored_annotations)
        .where(stored_annotations.c.task_id == task_id)
        .order_by(stored_annotations.c.received_at, stored_annotations.c.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(
            tuple_(stored_annotations.c.received_at, stored_annotations.c.id)
            > (after.created_at, after.id)
        )
    return (await session.execute(query)).all()


async def refusals_of_task(
    session: AsyncSession, task_id: uuid.UUID, limit: int, after_id: int | None
) -> Sequence[Row[Any]]:
    """A page of the requests refused about a task, oldest first."""
    query = (
        select(refusals).where(refusals.c.task_id == task_id).order_by(refusals.c.id).limit(limit)
    )
    if after_id is not None:
        query = query.where(refusals.c.id > after_id)
    return (await session.execute(query)).all()


def _vendor_task_columns() -> list[Any]:
    return [
        tasks.c.id,
        tasks.c.job_id,
        tasks.c.asset_id,
        tasks.c.replica,
        tasks.c.rework_comment,
        assignments.c.assigned_at,
        assignments.c.lease_expires_at,
        assets.c.sha256,
        assets.c.media_type,
        assets.c.width,
        assets.c.height,
    ]


def _open_assignments(vendor_id: uuid.UUID) -> Any:
    return (
        select(*_vendor_task_columns())
        .select_from(
            assignments.join(
                tasks,
                and_(tasks.c.id == assignments.c.task_id, tasks.c.attempt == assignments.c.attempt),
            ).outerjoin(assets, assets.c.id == tasks.c.asset_id)
        )
        .where(assignments.c.vendor_id == vendor_id, assignments.c.outcome == "open")
    )


async def open_tasks_of_vendor(
    session: AsyncSession, vendor_id: uuid.UUID, limit: int, after: Cursor | None
) -> Sequence[Row[Any]]:
    """A page of the tasks a vendor holds now (open assignments), oldest assignment first."""
    query = _open_assignments(vendor_id).order_by(assignments.c.assigned_at, tasks.c.id)
    if after is not None:
        query = query.where(
            tuple_(assignments.c.assigned_at, tasks.c.id) > (after.created_at, after.id)
        )
    return (await session.execute(query.limit(limit))).all()


async def open_task_of_vendor(
    session: AsyncSession, vendor_id: uuid.UUID, task_id: uuid.UUID
) -> Row[Any] | None:
    """One task the vendor holds now, or None (another vendor's, closed, or unknown)."""
    query = _open_assignments(vendor_id).where(tasks.c.id == task_id)
    return (await session.execute(query)).first()
