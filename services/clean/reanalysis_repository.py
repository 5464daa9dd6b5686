"""Clean's queries for re-analysis jobs (the report queries stay in :mod:`repository`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Text, Uuid, bindparam, delete, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.clean.domain import Findings
from services.clean.models import (
    SCHEMA,
    ImageFeatures,
    QualityReport,
    Reanalysis,
    VideoSignatureRow,
)
from shared.paging import Cursor

ACTIVE = ("queued", "running")
# Session-level advisory locks of running jobs live in their own key space (two int4 keys).
_LOCK_SPACE = "clean.reanalysis"


async def active_job(session: AsyncSession, dataset_id: uuid.UUID) -> Reanalysis | None:
    """The dataset's queued or running job, if any."""
    query = select(Reanalysis).where(
        Reanalysis.dataset_id == dataset_id, Reanalysis.state.in_(ACTIVE)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def report_span(session: AsyncSession, dataset_id: uuid.UUID) -> tuple[int, int]:
    """How many reports the dataset has and the arrival of the newest (0 if none)."""
    query = select(func.count(), func.coalesce(func.max(QualityReport.arrival), 0)).where(
        QualityReport.dataset_id == dataset_id
    )
    count, newest = (await session.execute(query)).one()
    return int(count), int(newest)


async def job(session: AsyncSession, job_id: uuid.UUID, *, lock: bool = False) -> Reanalysis | None:
    """A job; ``lock`` holds its row until the transaction ends (progress vs. cancel)."""
    query = select(Reanalysis).where(Reanalysis.id == job_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def jobs_of(
    session: AsyncSession, dataset_id: uuid.UUID, limit: int, after: Cursor | None
) -> Sequence[Reanalysis]:
    """A dataset's jobs, newest first, ``limit`` of them after ``after``."""
    query = (
        select(Reanalysis)
        .where(Reanalysis.dataset_id == dataset_id)
        .order_by(Reanalysis.created_at.desc(), Reanalysis.id.desc())
        .limit(limit)
    )
    if after is not None:
        key = tuple_(Reanalysis.created_at, Reanalysis.id)
        query = query.where(key < (after.created_at, after.id))
    return (await session.execute(query)).scalars().all()


async def pending_jobs(session: AsyncSession) -> list[uuid.UUID]:
    """Queued and running jobs (a running one may be left by a process that died), oldest
    first."""
    query = (
        select(Reanalysis.id).where(Reanalysis.state.in_(ACTIVE)).order_by(Reanalysis.created_at)
    )
    return list((await session.execute(query)).scalars())


async def try_lock_job(connection: AsyncConnection, job_id: uuid.UUID) -> bool:
    """Take the job for this connection's life (or until :func:`unlock_job`); False if another
    process runs it. A process that dies releases it with its connection."""
    query = text("SELECT pg_try_advisory_lock(hashtext(:space), hashtext(:job))")
    result = await connection.execute(query, {"space": _LOCK_SPACE, "job": str(job_id)})
    return bool(result.scalar_one())


async def unlock_job(connection: AsyncConnection, job_id: uuid.UUID) -> None:
    """Release a job taken with :func:`try_lock_job`."""
    query = text("SELECT pg_advisory_unlock(hashtext(:space), hashtext(:job))")
    await connection.execute(query, {"space": _LOCK_SPACE, "job": str(job_id)})


async def sources_after(
    session: AsyncSession, dataset_id: uuid.UUID, after: int, until: int, limit: int
) -> Sequence[Any]:
    """(asset_id, arrival, ingested) of the dataset's next reports by arrival, in
    ``(after, until]``."""
    query = (
        select(QualityReport.asset_id, QualityReport.arrival, QualityReport.ingested)
        .where(
            QualityReport.dataset_id == dataset_id,
            QualityReport.arrival > after,
            QualityReport.arrival <= until,
        )
        .order_by(QualityReport.arrival)
        .limit(limit)
    )
    return (await session.execute(query)).all()


async def store_sources(
    session: AsyncSession, dataset_id: uuid.UUID, sources: dict[uuid.UUID, dict[str, Any]]
) -> tuple[int, int]:
    """Set the stored source of the dataset's reports that have none; (stored, kept), where
    kept counts reports that had one already (it is left as it was)."""
    if not sources:
        return 0, 0
    query = select(QualityReport.asset_id, QualityReport.ingested.is_(None)).where(
        QualityReport.dataset_id == dataset_id, QualityReport.asset_id.in_(list(sources))
    )
    found = dict((await session.execute(query)).tuples().all())
    missing = [asset for asset, lacks in found.items() if lacks]
    if missing:
        await session.execute(
            _STORE_SOURCES,
            {"assets": missing, "sources": [json.dumps(sources[a]) for a in missing]},
        )
    return len(missing), len(found) - len(missing)


# Every missing source in one statement (a report that got one meanwhile keeps it).
_STORE_SOURCES = text(
    f"UPDATE {SCHEMA}.{QualityReport.__tablename__} AS report "  # noqa: S608 - our own table
    "SET ingested = CAST(given.source AS jsonb) "
    "FROM unnest(:assets, :sources) AS given (asset_id, source) "
    "WHERE report.asset_id = given.asset_id AND report.ingested IS NULL"
).bindparams(bindparam("assets", type_=ARRAY(Uuid())), bindparam("sources", type_=ARRAY(Text())))


async def reports_by_id(
    session: AsyncSession, asset_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, QualityReport]:
    """Stored reports by asset id."""
    if not asset_ids:
        return {}
    query = select(QualityReport).where(QualityReport.asset_id.in_(list(asset_ids)))
    return {report.asset_id: report for report in (await session.execute(query)).scalars()}


async def replace_kept_beside(
    session: AsyncSession, report: QualityReport, found: Findings
) -> None:
    """Replace what is stored beside a report: an image's features, a video's signature (or
    drop the old one when fresh findings have none)."""
    asset = report.asset_id
    if found.features is None:
        await session.execute(delete(ImageFeatures).where(ImageFeatures.asset_id == asset))
    else:
        features = {"asset_id": asset, "dataset_id": report.dataset_id, "features": found.features}
        upsert = insert(ImageFeatures).values(features)
        await session.execute(
            upsert.on_conflict_do_update(
                index_elements=[ImageFeatures.asset_id], set_={"features": found.features}
            )
        )
    if found.video is None:
        await session.execute(delete(VideoSignatureRow).where(VideoSignatureRow.asset_id == asset))
    else:
        kept = {
            "duration_seconds": found.video.duration,
            "samples": found.video.pack(),
            "fine_blocks": found.video.pack_fine(),
        }
        row = {"asset_id": asset, "dataset_id": report.dataset_id, "arrival": report.arrival}
        upsert_video = insert(VideoSignatureRow).values({**row, **kept})
        await session.execute(
            upsert_video.on_conflict_do_update(
                index_elements=[VideoSignatureRow.asset_id], set_=kept
            )
        )
