"""Assets' reviews in jobs: the rows judging opens and locks, and the sweep's questions.

Judging's functions come first; the review queue's reads for people follow them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Float, and_, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.qc.models import AssetReview, QcJob


async def open_review(
    session: AsyncSession,
    job_id: uuid.UUID,
    asset_id: uuid.UUID,
    dataset_id: uuid.UUID,
    first_answer_at: datetime,
) -> AssetReview:
    """The asset's review in the job, created waiting if it is new, locked until the
    transaction ends.

    The lock makes the answers of one asset (which arrive keyed by task, so possibly in
    parallel) judged one after another: the second sees the first's answer.
    """
    await session.execute(
        insert(AssetReview)
        .values(
            job_id=job_id,
            asset_id=asset_id,
            dataset_id=dataset_id,
            state="waiting",
            round=0,
            reasons=[],
            first_answer_at=first_answer_at,
            updated_at=func.now(),
        )
        .on_conflict_do_nothing()
    )
    review = await locked_review(session, job_id, asset_id)
    assert review is not None
    if review.first_answer_at is None:
        review.first_answer_at = first_answer_at
    return review


async def locked_review(
    session: AsyncSession, job_id: uuid.UUID, asset_id: uuid.UUID
) -> AssetReview | None:
    """The asset's review in the job, locked until the transaction ends (None: no answer yet)."""
    query = (
        select(AssetReview)
        .where(AssetReview.job_id == job_id, AssetReview.asset_id == asset_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def overdue_waiting(
    session: AsyncSession, now: datetime, default_timeout_seconds: float, limit: int
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(job, asset) of waiting reviews in jobs with overlap >= 2 whose first answer is older
    than the job's consensus timeout (its policy's, else the default), oldest first."""
    timeout = func.coalesce(
        QcJob.policy["consensus_timeout_seconds"].astext.cast(Float), default_timeout_seconds
    )
    due = AssetReview.first_answer_at + timeout * literal_column("interval '1 second'")
    query = (
        select(AssetReview.job_id, AssetReview.asset_id)
        .join(QcJob, QcJob.id == AssetReview.job_id)
        .where(
            AssetReview.state == "waiting",
            AssetReview.first_answer_at.is_not(None),
            QcJob.overlap >= 2,
            due <= now,
        )
        .order_by(AssetReview.first_answer_at)
        .limit(limit)
    )
    return [(job, asset) for job, asset in (await session.execute(query)).all()]


async def waiting_assets(session: AsyncSession, job_id: uuid.UUID) -> list[uuid.UUID]:
    """The assets of a job whose review waits (answers that came before the job was known)."""
    query = (
        select(AssetReview.asset_id)
        .where(and_(AssetReview.job_id == job_id, AssetReview.state == "waiting"))
        .order_by(AssetReview.asset_id)
    )
    return list((await session.execute(query)).scalars())
