"""The datasets and assets mirrors (filled from ingest's and clean's events) and predictions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.labeling_dispatch.models import KnownAsset, KnownDataset, Prediction


async def remember_datasets(
    session: AsyncSession, datasets: Sequence[tuple[uuid.UUID, str]]
) -> None:
    """Record (id, slug) pairs; ones already known are left as they are."""
    if datasets:
        rows = [{"id": ident, "slug": slug} for ident, slug in datasets]
        await session.execute(insert(KnownDataset).values(rows).on_conflict_do_nothing())


async def dataset_by_slug(session: AsyncSession, slug: str) -> KnownDataset | None:
    """The dataset with this slug."""
    query = select(KnownDataset).where(KnownDataset.slug == slug)
    return (await session.execute(query)).scalar_one_or_none()


async def dataset_by_id(session: AsyncSession, ident: uuid.UUID) -> KnownDataset | None:
    """The dataset with this id."""
    return await session.get(KnownDataset, ident)


async def lock_dataset(session: AsyncSession, ident: uuid.UUID) -> None:
    """Serialise a dataset's verdicts with its jobs' creation until the transaction ends.

    Without it a job created while an asset's verdict commits could miss the asset: the job
    would not see the verdict and the verdict would not see the job.
    """
    key = f"labeling-dataset:{ident}"
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})


async def upsert_ingested(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Where assets' bytes are and the trace of their upload; the verdict, if known, stays.

    Each row: id, dataset_id, sha256, media_type, filename, traceparent.
    """
    kept = ("sha256", "media_type", "filename", "traceparent")
    await _upsert_assets(session, [{**r, "state": "ingested"} for r in rows], kept)


async def upsert_verdicts(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Clean's verdicts; the ingest facts, if known, stay.

    Each row: id, dataset_id, media_type, state (cleaned | rejected), width, height, cleaned_at.
    """
    await _upsert_assets(session, rows, ("state", "width", "height", "cleaned_at"))


async def _upsert_assets(
    session: AsyncSession, rows: Sequence[dict[str, Any]], columns: Sequence[str]
) -> None:
    """Insert asset rows, or on a known id set only ``columns`` (and a missing media type)."""
    if not rows:
        return
    statement = insert(KnownAsset).values(list(rows))
    excluded = statement.excluded
    updates: dict[str, Any] = {c: excluded[c] for c in columns}
    updates.setdefault("media_type", func.coalesce(KnownAsset.media_type, excluded.media_type))
    await session.execute(
        statement.on_conflict_do_update(index_elements=[KnownAsset.id], set_=updates)
    )


async def assets_by_ids(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[KnownAsset]:
    """The known assets among ``ids``."""
    if not ids:
        return []
    return list((await session.execute(select(KnownAsset).where(KnownAsset.id.in_(ids)))).scalars())


async def asset_by_id(session: AsyncSession, ident: uuid.UUID) -> KnownAsset | None:
    """The known asset with this id."""
    return await session.get(KnownAsset, ident)


async def cleaned_images(session: AsyncSession, dataset_id: uuid.UUID) -> list[KnownAsset]:
    """A dataset's cleaned images, in the order they were cleaned."""
    query = (
        select(KnownAsset)
        .where(
            KnownAsset.dataset_id == dataset_id,
            KnownAsset.state == "cleaned",
            KnownAsset.media_type.like("image/%"),
        )
        .order_by(KnownAsset.cleaned_at, KnownAsset.id)
    )
    return list((await session.execute(query)).scalars())


async def lowest_margins(
    session: AsyncSession, asset_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, float]:
    """Each asset's lowest prediction margin over its models (assets without one are missing)."""
    if not asset_ids:
        return {}
    query = (
        select(Prediction.asset_id, func.min(Prediction.margin))
        .where(Prediction.asset_id.in_(asset_ids), Prediction.margin.is_not(None))
        .group_by(Prediction.asset_id)
    )
    return {ident: float(margin) for ident, margin in (await session.execute(query)).all()}


async def upsert_predictions(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Store predictions, replacing an asset's earlier ones from the same model.

    Each row: asset_id, model, shapes, margin, created_by.
    """
    if not rows:
        return
    statement = insert(Prediction).values(list(rows))
    excluded = statement.excluded
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[Prediction.asset_id, Prediction.model],
            set_={
                "shapes": excluded.shapes,
                "margin": excluded.margin,
                "created_by": excluded.created_by,
                "created_at": func.now(),
            },
        )
    )


async def predictions_of(session: AsyncSession, asset_id: uuid.UUID) -> list[Prediction]:
    """An asset's predictions, one per model."""
    query = select(Prediction).where(Prediction.asset_id == asset_id).order_by(Prediction.model)
    return list((await session.execute(query)).scalars())
