"""Writes to the projections: one set-based statement per table per run of events.

Every write merges: a row may be created by whichever of its events arrives first, and a
"latest" column only moves forward in event time, so replaying the topics in any interleaving
gives the same rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.dashboard.models import (
    assets,
    datasets,
    dead_letters,
    drops,
    jobs,
    progress,
    stage_minutes,
    tasks,
    vendors,
    versions,
)

Row = dict[str, Any]


async def upsert_datasets(session: AsyncSession, rows: Sequence[Row]) -> None:
    """Datasets as ingest announced them."""
    if rows:
        statement = insert(datasets).values(list(rows))
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[datasets.c.dataset_id],
                set_={"slug": statement.excluded.slug, "name": statement.excluded.name},
            )
        )


async def upsert_uploads(session: AsyncSession, rows: Sequence[Row]) -> None:
    """The upload facts of assets (one row per asset in ``rows``)."""
    if not rows:
        return
    statement = insert(assets).values(list(rows))
    columns = [c for c in rows[0] if c != "asset_id"]
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[assets.c.asset_id],
            set_={c: statement.excluded[c] for c in columns},
        )
    )


async def upsert_verdicts(session: AsyncSession, rows: Sequence[Row]) -> None:
    """Clean's verdicts; an older verdict than the one stored changes nothing."""
    if not rows:
        return
    statement = insert(assets).values(list(rows))
    newer = assets.c.verdict_at.is_(None) | (assets.c.verdict_at <= statement.excluded.verdict_at)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[assets.c.asset_id],
            set_={
                "dataset_id": func.coalesce(assets.c.dataset_id, statement.excluded.dataset_id),
                "verdict": statement.excluded.verdict,
                "verdict_at": statement.excluded.verdict_at,
                "reasons": statement.excluded.reasons,
                "flags": statement.excluded.flags,
                "metrics": statement.excluded.metrics,
            },
            where=newer,
        )
    )


async def count_tasks(session: AsyncSession, rows: Sequence[Row]) -> None:
    """Tasks created per asset (``tasks``: how many, ``first_task_at``: the earliest)."""
    if not rows:
        return
    statement = insert(assets).values(list(rows))
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[assets.c.asset_id],
            set_={
                "dataset_id": func.coalesce(assets.c.dataset_id, statement.excluded.dataset_id),
                "tasks": assets.c.tasks + statement.excluded.tasks,
                "first_task_at": _earliest(
                    assets.c.first_task_at, statement.excluded.first_task_at
                ),
            },
        )
    )


async def note_dispatches(session: AsyncSession, rows: Sequence[Row]) -> None:
    """The earliest dispatch of each asset's tasks."""
    if not rows:
        return
    statement = insert(assets).values(list(rows))
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[assets.c.asset_id],
            set_={
                "first_dispatched_at": _earliest(
                    assets.c.first_dispatched_at, statement.excluded.first_dispatched_at
                )
            },
        )
    )


async def count_submissions(session: AsyncSession, rows: Sequence[Row]) -> None:
    """Answers per asset and the earliest one."""
    if not rows:
        return
    statement = insert(assets).values(list(rows))
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[assets.c.asset_id],
            set_={
                "dataset_id": func.coalesce(assets.c.dataset_id, statement.excluded.dataset_id),
                "submissions": assets.c.submissions + statement.excluded.submissions,
                "first_submitted_at": _earliest(
                    assets.c.first_submitted_at, statement.excluded.first_submitted_at
                ),
            },
        )
    )


async def upsert_decisions(session: AsyncSession, rows: Sequence[Row]) -> None:
    """QC's decisions; an older decision than the one stored changes nothing."""
    if not rows:
        return
    statement = insert(assets).values(list(rows))
    newer = assets.c.decided_at.is_(None) | (assets.c.decided_at <= statement.excluded.decided_at)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[assets.c.asset_id],
            set_={
                "dataset_id": func.coalesce(assets.c.dataset_id, statement.excluded.dataset_id),
                "decision": statement.excluded.decision,
                "decided_at": statement.excluded.decided_at,
                "decided_by": statement.excluded.decided_by,
            },
            where=newer,
        )
    )


def _earliest(stored: Any, new: Any) -> Any:
    # LEAST ignores NULLs in Postgres
    return func.least(stored, new)


async def add_drops(session: AsyncSession, rows: Sequence[Row]) -> None:
    """Landing-bucket objects that never became assets."""
    if rows:
        await session.execute(insert(drops).values(list(rows)).on_conflict_do_nothing())


async def add_stage_counts(
    session: AsyncSession, counts: Mapping[tuple[uuid.UUID, str, datetime], int]
) -> None:
    """Add events per (dataset, stage, minute)."""
    if not counts:
        return
    rows = [
        {"dataset_id": d, "stage": s, "minute": m, "events": n} for (d, s, m), n in counts.items()
    ]
    statement = insert(stage_minutes).values(rows)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[
                stage_minutes.c.dataset_id,
                stage_minutes.c.stage,
                stage_minutes.c.minute,
            ],
            set_={"events": stage_minutes.c.events + statement.excluded.events},
        )
    )


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
    if rows:
        statement = insert(vendors).values(list(rows))
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[vendors.c.vendor_id],
                set_={"name": statement.excluded.name, "capacity": statement.excluded.capacity},
            )
        )


async def upsert_jobs(session: AsyncSession, rows: Sequence[Row]) -> None:
    """Jobs as created."""
    if rows:
        statement = insert(jobs).values(list(rows))
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[jobs.c.job_id],
                set_={"name": statement.excluded.name, "dataset_id": statement.excluded.dataset_id},
            )
        )


async def set_job_states(session: AsyncSession, states: Mapping[uuid.UUID, str]) -> None:
    """A job's latest state (events of one job arrive in order: they share its key)."""
    for job_id, state in states.items():
        await session.execute(update(jobs).where(jobs.c.job_id == job_id).values(state=state))


async def upsert_tasks(session: AsyncSession, rows: Sequence[Row]) -> None:
    """Tasks' latest states; an older state than the one stored changes nothing."""
    if not rows:
        return
    statement = insert(tasks).values(list(rows))
    set_: dict[str, Any] = {
        c: statement.excluded[c] for c in rows[0] if c not in ("task_id", "vendor_id")
    }
    set_["vendor_id"] = func.coalesce(statement.excluded.vendor_id, tasks.c.vendor_id)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[tasks.c.task_id],
            set_=set_,
            where=tasks.c.state_at <= statement.excluded.state_at,
        )
    )


async def add_dead_letters(session: AsyncSession, rows: Sequence[Row]) -> None:
    """Messages some consumer gave up on."""
    if rows:
        await session.execute(insert(dead_letters).values(list(rows)).on_conflict_do_nothing())


async def add_versions(session: AsyncSession, rows: Sequence[Row]) -> None:
    """Frozen dataset versions."""
    if rows:
        await session.execute(insert(versions).values(list(rows)).on_conflict_do_nothing())


async def count_applied(session: AsyncSession, events: int) -> None:
    """Advance the change counter the page polls."""
    await session.execute(
        update(progress)
        .where(progress.c.id == 1)
        .values(events_applied=progress.c.events_applied + events, changed_at=func.now())
    )
