"""Writes to the projections.

Every write merges: a row may be created by whichever of its events arrives first, and a
"latest" column only moves forward in event time, so replaying the topics in any interleaving
gives the same rows. Each statement is built once, here, and run with a list of rows (an
executemany): catching up on a topic costs no SQL compiling per batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.dashboard.models import (
    assets,
    datasets,
    dead_letters,
    drops,
    funnel_assets,
    funnel_hours,
    jobs,
    progress,
    stage_minutes,
    tasks,
    vendors,
    versions,
)

Row = dict[str, Any]


def _upsert(
    table: Table,
    key: Sequence[str],
    set_: Mapping[str, Any],
    where: Any = None,
) -> Insert:
    """INSERT ... ON CONFLICT (key) DO UPDATE; ``set_`` values may be callables of EXCLUDED."""
    statement = insert(table)
    excluded = statement.excluded
    values = {c: v(excluded) if callable(v) else v for c, v in set_.items()}
    return statement.on_conflict_do_update(
        index_elements=[table.c[k] for k in key],
        set_=values,
        where=where(excluded) if callable(where) else where,
    )


def _new(column: str) -> Any:
    return lambda excluded: excluded[column]


def _keep_dataset(excluded: Any) -> ColumnElement[Any]:
    return func.coalesce(assets.c.dataset_id, excluded.dataset_id)


def _earliest(column: str) -> Any:
    # LEAST ignores NULLs in Postgres
    return lambda excluded: func.least(assets.c[column], excluded[column])


_UPLOAD_COLUMNS = (
    "dataset_id",
    "filename",
    "sha256",
    "media_type",
    "size_bytes",
    "source",
    "parent_asset_id",
    "uploaded_by",
    "bucket",
    "object_key",
    "trace_id",
    "uploaded_at",
)
UPSERT_DATASET = _upsert(datasets, ["dataset_id"], {"slug": _new("slug"), "name": _new("name")})
UPSERT_UPLOAD = _upsert(assets, ["asset_id"], {c: _new(c) for c in _UPLOAD_COLUMNS})
UPSERT_VERDICT = _upsert(
    assets,
    ["asset_id"],
    {
        "dataset_id": _keep_dataset,
        **{c: _new(c) for c in ("verdict", "verdict_at", "reasons", "flags", "metrics")},
    },
    where=lambda excluded: (
        assets.c.verdict_at.is_(None) | (assets.c.verdict_at <= excluded.verdict_at)
    ),
)
COUNT_TASKS = _upsert(
    assets,
    ["asset_id"],
    {
        "dataset_id": _keep_dataset,
        "tasks": lambda excluded: assets.c.tasks + excluded.tasks,
        "first_task_at": _earliest("first_task_at"),
    },
)
NOTE_DISPATCH = _upsert(
    assets, ["asset_id"], {"first_dispatched_at": _earliest("first_dispatched_at")}
)
COUNT_SUBMISSIONS = _upsert(
    assets,
    ["asset_id"],
    {
        "dataset_id": _keep_dataset,
        "submissions": lambda excluded: assets.c.submissions + excluded.submissions,
        "first_submitted_at": _earliest("first_submitted_at"),
    },
)
UPSERT_DECISION = _upsert(
    assets,
    ["asset_id"],
    {"dataset_id": _keep_dataset, **{c: _new(c) for c in ("decision", "decided_at", "decided_by")}},
    where=lambda excluded: (
        assets.c.decided_at.is_(None) | (assets.c.decided_at <= excluded.decided_at)
    ),
)
ADD_STAGE_COUNT = _upsert(
    stage_minutes,
    ["dataset_id", "stage", "minute"],
    {"events": lambda excluded: stage_minutes.c.events + excluded.events},
)
UPSERT_VENDOR = _upsert(
    vendors, ["vendor_id"], {"name": _new("name"), "capacity": _new("capacity")}
)
UPSERT_JOB = _upsert(jobs, ["job_id"], {"name": _new("name"), "dataset_id": _new("dataset_id")})
UPSERT_TASK = _upsert(
    tasks,
    ["task_id"],
    {
        **{c: _new(c) for c in ("job_id", "asset_id", "state", "gold", "state_at")},
        "vendor_id": lambda excluded: func.coalesce(excluded.vendor_id, tasks.c.vendor_id),
    },
    where=lambda excluded: tasks.c.state_at <= excluded.state_at,
)
ADD_FUNNEL_COUNT = _upsert(
    funnel_hours,
    ["dataset_id", "hour", "mark"],
    {"assets": lambda excluded: funnel_hours.c.assets + excluded.assets},
)
SET_COUNTED = _upsert(
    funnel_assets,
    ["asset_id"],
    {c: _new(c) for c in ("dataset_id", "hour", "marks")},
)
# What each asset's funnel standing depends on, and what it was counted as. The reason codes
# are taken out of the JSON here (only a rejection's count): the rows are read on every poll.
FUNNEL_ROWS = text(
    """
    SELECT a.asset_id, a.dataset_id, a.uploaded_at, a.verdict, a.tasks,
           a.first_dispatched_at IS NOT NULL AS dispatched, a.submissions, a.decision,
           CASE WHEN a.verdict = 'rejected' AND jsonb_typeof(a.reasons) = 'array' THEN
               ARRAY(SELECT r ->> 'code' FROM jsonb_array_elements(a.reasons) AS r
                     WHERE r ->> 'code' IS NOT NULL)
           END AS reason_codes,
           f.dataset_id AS counted_dataset_id, f.hour AS counted_hour, f.marks AS counted_marks
    FROM dashboard.assets AS a
    LEFT JOIN dashboard.funnel_assets AS f ON f.asset_id = a.asset_id
    WHERE a.asset_id = ANY(:asset_ids)
    """
).bindparams(bindparam("asset_ids", type_=ARRAY(assets.c.asset_id.type)))
ADD_DROP = insert(drops).on_conflict_do_nothing()
ADD_DEAD_LETTER = insert(dead_letters).on_conflict_do_nothing()
ADD_VERSION = insert(versions).on_conflict_do_nothing()


async def _run(session: AsyncSession, statement: Any, rows: Sequence[Row]) -> None:
    if rows:
        await session.execute(statement, list(rows))


async def upsert_datasets(session: AsyncSession, rows: Sequence[Row]) -> None:
    """Datasets as ingest announced them."""
    await _run(session, UPSERT_DATASET, rows)


async def upsert_uploads(session: AsyncSession, rows: Sequence[Row]) -> None:
    """The upload facts of assets."""
    await _run(session, UPSERT_UPLOAD, rows)


async def upsert_verdicts(session: AsyncSession, rows: Sequence[Row]) -> None:
    """Clean's verdicts; an older verdict than the one stored changes nothing."""
    await _run(session, UPSERT_VERDICT, rows)


async def count_tasks(session: AsyncSession, rows: Sequence[Row]) -> None:
    """Tasks created per asset (``tasks``: how many, ``first_task_at``: the earliest)."""
    await _run(session, COUNT_TASKS, rows)


async def note_dispatches(session: AsyncSession, rows: Sequence[Row]) -> None:
    """The earliest dispatch of each asset's tasks."""
    await _run(session, NOTE_DISPATCH, rows)


async def count_submissions(session: AsyncSession, rows: Sequence[Row]) -> None:
    """Answers per asset and the earliest one."""
    await _run(session, COUNT_SUBMISSIONS, rows)


async def upsert_decisions(session: AsyncSession, rows: Sequence[Row]) -> None:
    """QC's decisions; an older decision than the one stored changes nothing."""
    await _run(session, UPSERT_DECISION, rows)


async def add_drops(session: AsyncSession, rows: Sequence[Row]) -> None:
    """Landing-bucket objects that never became assets."""
    await _run(session, ADD_DROP, rows)


async def add_stage_counts(
    session: AsyncSession, counts: Mapping[tuple[uuid.UUID, str, datetime], int]
) -> None:
    """Add events per (dataset, stage, minute); in key order, so two writers lock rows alike."""
    rows = [
        {"dataset_id": d, "stage": s, "minute": m, "events": n}
        for (d, s, m), n in sorted(counts.items())
    ]
    await _run(session, ADD_STAGE_COUNT, rows)


async def add_funnel_counts(
    session: AsyncSession, counts: Mapping[tuple[uuid.UUID, datetime, str], int]
) -> None:
    """Add assets per (dataset, upload hour, mark), negative counts too; in key order, so two
    writers lock rows alike."""
    rows = [
        {"dataset_id": d, "hour": h, "mark": m, "assets": n}
        for (d, h, m), n in sorted(counts.items())
        if n
    ]
    await _run(session, ADD_FUNNEL_COUNT, rows)


async def funnel_rows(session: AsyncSession, asset_ids: Sequence[uuid.UUID]) -> list[Row]:
    """Of each asset in ``asset_ids``: the columns its funnel standing depends on
    (``reason_codes`` of a rejection) and what it is counted as (``counted_*``)."""
    if not asset_ids:
        return []
    result = await session.execute(FUNNEL_ROWS, {"asset_ids": list(asset_ids)})
    return [dict(row._mapping) for row in result]


async def set_counted(session: AsyncSession, rows: Sequence[Row]) -> None:
    """Record what assets now count for (``asset_id``, ``dataset_id``, ``hour``, ``marks``)."""
    await _run(session, SET_COUNTED, rows)


async def forget_counted(session: AsyncSession, asset_ids: Sequence[uuid.UUID]) -> None:
    """Assets that no longer count in the funnel."""
    if asset_ids:
        await session.execute(delete(funnel_assets).where(funnel_assets.c.asset_id.in_(asset_ids)))


async def datasets_of_assets(
    session: AsyncSession, asset_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    """The dataset of each known asset among ``asset_ids``."""
    if not asset_ids:
        return {}
    query = select(assets.c.asset_id, assets.c.dataset_id).where(
        assets.c.asset_id.in_(set(asset_ids)), assets.c.dataset_id.is_not(None)
    )
    return {row.asset_id: row.dataset_id for row in await session.execute(query)}


async def datasets_of_jobs(
    session: AsyncSession, job_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    """The dataset of each known job among ``job_ids``."""
    if not job_ids:
        return {}
    query = select(jobs.c.job_id, jobs.c.dataset_id).where(jobs.c.job_id.in_(set(job_ids)))
    return {row.job_id: row.dataset_id for row in await session.execute(query)}


async def upsert_vendors(session: AsyncSession, rows: Sequence[Row]) -> None:
    """Vendors as labeling-dispatch announced them."""
    await _run(session, UPSERT_VENDOR, rows)


async def upsert_jobs(session: AsyncSession, rows: Sequence[Row]) -> None:
    """Jobs as created."""
    await _run(session, UPSERT_JOB, rows)


async def set_job_states(session: AsyncSession, states: Mapping[uuid.UUID, str]) -> None:
    """A job's latest state (events of one job arrive in order: they share its key)."""
    for job_id, state in states.items():
        await session.execute(update(jobs).where(jobs.c.job_id == job_id).values(state=state))


async def upsert_tasks(session: AsyncSession, rows: Sequence[Row]) -> None:
    """Tasks' latest states; an older state than the one stored changes nothing."""
    await _run(session, UPSERT_TASK, rows)


async def add_dead_letters(session: AsyncSession, rows: Sequence[Row]) -> None:
    """Messages some consumer gave up on."""
    await _run(session, ADD_DEAD_LETTER, rows)


async def add_versions(session: AsyncSession, rows: Sequence[Row]) -> None:
    """Frozen dataset versions."""
    await _run(session, ADD_VERSION, rows)


async def count_applied(session: AsyncSession, events: int) -> None:
    """Advance the change counter the page polls."""
    await session.execute(
        update(progress)
        .where(progress.c.id == 1)
        .values(events_applied=progress.c.events_applied + events, changed_at=func.now())
    )
