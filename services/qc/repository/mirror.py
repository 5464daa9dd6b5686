"""QC's mirrors of other services' facts: datasets, assets, ontology versions, jobs, tasks.

Each is filled from the events that announce it; a fact already known is not overwritten by a
redelivered or reordered announcement (ingest's and clean's topics are read independently).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.qc.models import KnownAsset, KnownDataset, OntologyVersion, QcJob, QcTask


async def remember_datasets(
    session: AsyncSession, datasets: Sequence[tuple[uuid.UUID, str]]
) -> None:
    """Record (id, slug) pairs; ones already known stay as they are."""
    if datasets:
        rows = [{"id": ident, "slug": slug} for ident, slug in sorted(set(datasets))]
        await session.execute(insert(KnownDataset).values(rows).on_conflict_do_nothing())


async def upsert_assets(
    session: AsyncSession, rows: Sequence[dict[str, Any]], columns: Sequence[str]
) -> None:
    """Insert asset rows (each with ``id`` and ``dataset_id``), or on a known id set ``columns``.

    Rows carry only what their event knows: ingest's facts (sha256, filename, media_type) or
    clean's (width, height); the other side's columns are left alone.
    """
    if not rows:
        return
    statement = insert(KnownAsset).values(list(rows))
    updates = {c: statement.excluded[c] for c in columns}
    await session.execute(
        statement.on_conflict_do_update(index_elements=[KnownAsset.id], set_=updates)
    )


async def remember_ontology_version(
    session: AsyncSession, ontology_id: uuid.UUID, version: int, name: str, classes: list[str]
) -> None:
    """Record an ontology version's class names in order (versions never change)."""
    await session.execute(
        insert(OntologyVersion)
        .values(ontology_id=ontology_id, version=version, name=name, classes=classes)
        .on_conflict_do_nothing()
    )


async def remember_job(session: AsyncSession, row: dict[str, Any]) -> None:
    """Record a job (id, name, dataset_id, ontology_id, ontology_version, overlap) with no
    QC policy of its own yet."""
    await session.execute(insert(QcJob).values(**row, policy={}).on_conflict_do_nothing())


async def remember_tasks(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Record tasks (id, job_id, asset_id, replica, gold, gold_shapes)."""
    if rows:
        await session.execute(insert(QcTask).values(list(rows)).on_conflict_do_nothing())


async def job_by_id(session: AsyncSession, ident: uuid.UUID) -> QcJob | None:
    """The known job with this id."""
    return await session.get(QcJob, ident)


async def lock_job_arrival(session: AsyncSession, ident: uuid.UUID) -> QcJob | None:
    """Serialise a job's announcement with answers judged before it, until the transaction
    ends; the job as committed by then (None: still unknown).

    The job's event and its answers travel on different partitions, so they are handled side
    by side: without this, an answer judged while the job's transaction commits would wait
    for a job that had already looked for waiting assets.
    """
    key = f"qc-job-arrival:{ident}"
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})
    query = select(QcJob).where(QcJob.id == ident).execution_options(populate_existing=True)
    return (await session.execute(query)).scalar_one_or_none()


async def task_by_id(session: AsyncSession, ident: uuid.UUID) -> QcTask | None:
    """The known task with this id."""
    return await session.get(QcTask, ident)


async def jobs_by_ids(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, QcJob]:
    """The known jobs among ``ids``, by id."""
    if not ids:
        return {}
    query = select(QcJob).where(QcJob.id.in_(ids))
    return {job.id: job for job in (await session.execute(query)).scalars()}
