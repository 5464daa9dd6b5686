"""Judged annotations: every version QC received, and which of them are live (count now)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.qc.models import JudgedAnnotation


async def add_annotation(session: AsyncSession, row: dict[str, Any]) -> bool:
    """Store an annotation version (``live`` false until :func:`settle_live`); False when
    its id was stored before (the same answer announced twice)."""
    statement = (
        insert(JudgedAnnotation)
        .values(**row, live=False)
        .on_conflict_do_nothing(index_elements=[JudgedAnnotation.id])
        .returning(JudgedAnnotation.id)
    )
    return (await session.execute(statement)).first() is not None


async def settle_live(session: AsyncSession, annotation_id: uuid.UUID, task_id: uuid.UUID) -> bool:
    """Make ``annotation_id`` its task's live answer unless a newer version of the task is
    stored (newer: higher version, then later received); True if it is live now.

    Older versions of the task stop counting. A newer version that was withdrawn still wins:
    the vendor deleted the answer as a whole, so no older version of it comes back.
    """
    mine = select(JudgedAnnotation.version, JudgedAnnotation.received_at).where(
        JudgedAnnotation.id == annotation_id
    )
    version, received_at = (await session.execute(mine)).one()
    order = tuple_(JudgedAnnotation.version, JudgedAnnotation.received_at)
    newer = select(JudgedAnnotation.id).where(
        JudgedAnnotation.task_id == task_id,
        JudgedAnnotation.id != annotation_id,
        order > tuple_(version, received_at),
    )
    if (await session.execute(newer.limit(1))).first() is not None:
        return False
    await session.execute(
        update(JudgedAnnotation)
        .where(
            JudgedAnnotation.task_id == task_id,
            JudgedAnnotation.id != annotation_id,
            JudgedAnnotation.live,
        )
        .values(live=False)
    )
    await session.execute(
        update(JudgedAnnotation).where(JudgedAnnotation.id == annotation_id).values(live=True)
    )
    return True


async def withdraw(session: AsyncSession, annotation_id: uuid.UUID) -> JudgedAnnotation | None:
    """Stop counting an annotation; the annotation if it was live until now."""
    statement = (
        update(JudgedAnnotation)
        .where(JudgedAnnotation.id == annotation_id, JudgedAnnotation.live)
        .values(live=False)
        .returning(JudgedAnnotation)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def set_aside_task(session: AsyncSession, task_id: uuid.UUID) -> list[uuid.UUID]:
    """Stop counting the answer of a task sent back for rework (its new answer will count);
    the ids that stopped counting."""
    statement = (
        update(JudgedAnnotation)
        .where(JudgedAnnotation.task_id == task_id, JudgedAnnotation.live)
        .values(live=False)
        .returning(JudgedAnnotation.id)
    )
    return list((await session.execute(statement)).scalars())


async def live_answers(
    session: AsyncSession, job_id: uuid.UUID, asset_id: uuid.UUID
) -> list[JudgedAnnotation]:
    """The answers that count for an asset in a job (not gold; one per task), by replica."""
    query = (
        select(JudgedAnnotation)
        .where(
            JudgedAnnotation.asset_id == asset_id,
            JudgedAnnotation.job_id == job_id,
            JudgedAnnotation.live,
            JudgedAnnotation.gold.is_(False),
        )
        .order_by(JudgedAnnotation.replica, JudgedAnnotation.received_at, JudgedAnnotation.id)
    )
    return list((await session.execute(query)).scalars())


async def job_classifications(
    session: AsyncSession, job_id: uuid.UUID
) -> list[tuple[uuid.UUID, str, int, list[dict[str, Any]]]]:
    """(asset, annotator, replica, shapes) of every answer that counts in a job (not gold),
    for the job's agreement figures."""
    query = select(
        JudgedAnnotation.asset_id,
        JudgedAnnotation.annotator_id,
        JudgedAnnotation.replica,
        JudgedAnnotation.shapes,
    ).where(
        JudgedAnnotation.job_id == job_id,
        JudgedAnnotation.live,
        JudgedAnnotation.gold.is_(False),
    )
    return [(a, n, r, list(s)) for a, n, r, s in await session.execute(query)]
