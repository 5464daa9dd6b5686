"""What the review queue reads besides judging's queries: pages of reviews, one review, an
asset's tasks, an ontology version's classes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.qc.models import AssetReview, OntologyVersion, QcTask


@dataclass(frozen=True)
class ReviewFilter:
    """What a review list is limited to (None: anything)."""

    job_id: uuid.UUID | None = None
    state: str | None = None
    dataset_id: uuid.UUID | None = None
    # the datasets the caller may see (None: all)
    datasets: Sequence[uuid.UUID] | None = None


@dataclass(frozen=True)
class ReviewPosition:
    """Keyset position in a review list: the last row of the previous page."""

    updated_at: datetime
    asset_id: uuid.UUID
    job_id: uuid.UUID


async def list_reviews(
    session: AsyncSession, limit: int, after: ReviewPosition | None, where: ReviewFilter
) -> list[AssetReview]:
    """A page of reviews, the longest unchanged first (the front of the queue)."""
    order = (AssetReview.updated_at, AssetReview.asset_id, AssetReview.job_id)
    query = select(AssetReview).order_by(*order).limit(limit)
    if after is not None:
        query = query.where(tuple_(*order) > (after.updated_at, after.asset_id, after.job_id))
    if where.job_id is not None:
        query = query.where(AssetReview.job_id == where.job_id)
    if where.state is not None:
        query = query.where(AssetReview.state == where.state)
    if where.dataset_id is not None:
        query = query.where(AssetReview.dataset_id == where.dataset_id)
    if where.datasets is not None:
        query = query.where(AssetReview.dataset_id.in_(where.datasets))
    return list((await session.execute(query)).scalars())


async def review_of(
    session: AsyncSession, job_id: uuid.UUID, asset_id: uuid.UUID
) -> AssetReview | None:
    """One asset's review in one job (to read; deciding locks it with ``locked_review``)."""
    query = select(AssetReview).where(
        AssetReview.job_id == job_id, AssetReview.asset_id == asset_id
    )
    return (await session.execute(query)).scalar_one_or_none()


async def tasks_of(session: AsyncSession, job_id: uuid.UUID, asset_id: uuid.UUID) -> list[QcTask]:
    """An asset's tasks in a job, by replica."""
    query = (
        select(QcTask)
        .where(QcTask.job_id == job_id, QcTask.asset_id == asset_id)
        .order_by(QcTask.replica)
    )
    return list((await session.execute(query)).scalars())


async def ontology_classes(
    session: AsyncSession, ontology_id: uuid.UUID, version: int
) -> list[str] | None:
    """The class names of an ontology version (None: QC has not heard of it)."""
    query = select(OntologyVersion.classes).where(
        OntologyVersion.ontology_id == ontology_id, OntologyVersion.version == version
    )
    classes: list[str] | None = (await session.execute(query)).scalar_one_or_none()
    return None if classes is None else list(classes)
