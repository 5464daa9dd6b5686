"""All of clean's queries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.clean.models import HashBand, KnownDataset, Policy, QualityReport

_SIGN = 1 << 63


def to_signed(phash: int) -> int:
    """A 64-bit unsigned hash as Postgres ``bigint``."""
    return phash - (1 << 64) if phash >= _SIGN else phash


def to_unsigned(value: int) -> int:
    """Back from ``bigint``."""
    return value + (1 << 64) if value < 0 else value


async def remember_dataset(session: AsyncSession, dataset_id: uuid.UUID, slug: str) -> None:
    """Record a dataset's slug (idempotent)."""
    await session.execute(
        insert(KnownDataset).values(id=dataset_id, slug=slug).on_conflict_do_nothing()
    )


async def dataset_id(session: AsyncSession, slug: str) -> uuid.UUID | None:
    """The id of the dataset with this slug, if ingest announced it."""
    query = select(KnownDataset.id).where(KnownDataset.slug == slug)
    return (await session.execute(query)).scalar_one_or_none()


async def policy(session: AsyncSession, ident: uuid.UUID) -> Policy | None:
    """A dataset's stored policy."""
    return await session.get(Policy, ident)


async def lock_dataset(session: AsyncSession, ident: uuid.UUID) -> None:
    """Serialise duplicate detection within one dataset until the transaction ends."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": str(ident)})


async def next_arrival(session: AsyncSession) -> int:
    """A number that orders assets by when clean saw them (first copy wins)."""
    return int((await session.execute(text("SELECT nextval('clean.arrival_seq')"))).scalar_one())


async def first_with_pixels(
    session: AsyncSession, ident: uuid.UUID, pixel_sha256: str
) -> uuid.UUID | None:
    """The earliest asset of the dataset whose decoded pixels have this digest."""
    query = (
        select(QualityReport.asset_id)
        .where(QualityReport.dataset_id == ident, QualityReport.pixel_sha256 == pixel_sha256)
        .order_by(QualityReport.arrival)
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


# The probe keys travel as two arrays: one statement, no per-call SQL compilation of a
# several-hundred-element IN list.
_CANDIDATES = text(
    """
    SELECT b.asset_id, b.phash, min(b.arrival) AS arrival
    FROM clean.phash_bands AS b
    JOIN unnest(CAST(:bands AS smallint[]), CAST(:vals AS integer[])) AS k(band, value)
      ON b.band = k.band AND b.value = k.value
    WHERE b.dataset_id = :dataset
    GROUP BY b.asset_id, b.phash
    ORDER BY arrival
    """
)


async def band_candidates(
    session: AsyncSession, ident: uuid.UUID, keys: Sequence[tuple[int, int]]
) -> list[tuple[uuid.UUID, int]]:
    """Assets sharing at least one probed band value, oldest first, as (id, unsigned hash)."""
    result = await session.execute(
        _CANDIDATES,
        {"dataset": ident, "bands": [b for b, _ in keys], "vals": [v for _, v in keys]},
    )
    return [(row[0], to_unsigned(row[1])) for row in result.all()]


async def index_hash(
    session: AsyncSession,
    ident: uuid.UUID,
    asset_id: uuid.UUID,
    phash: int,
    bands: Sequence[tuple[int, int]],
    arrival: int,
) -> None:
    """Add an asset's hash to the dataset's multi-index."""
    await session.execute(
        insert(HashBand).on_conflict_do_nothing(),
        [
            {
                "dataset_id": ident,
                "band": band,
                "value": value,
                "asset_id": asset_id,
                "phash": to_signed(phash),
                "arrival": arrival,
            }
            for band, value in bands
        ],
    )


async def reports_of(
    session: AsyncSession, ident: uuid.UUID, after_arrival: int, limit: int
) -> Sequence[QualityReport]:
    """A dataset's reports in arrival order."""
    query = (
        select(QualityReport)
        .where(QualityReport.dataset_id == ident, QualityReport.arrival > after_arrival)
        .order_by(QualityReport.arrival)
        .limit(limit)
    )
    return (await session.execute(query)).scalars().all()


async def duplicate_pairs(session: AsyncSession, ident: uuid.UUID) -> Sequence[Any]:
    """(original, copy, code, distance) for every duplicate found in the dataset."""
    query = (
        select(
            QualityReport.duplicate_of,
            QualityReport.asset_id,
            QualityReport.duplicate_code,
            QualityReport.duplicate_distance,
        )
        .where(QualityReport.dataset_id == ident, QualityReport.duplicate_of.is_not(None))
        .order_by(QualityReport.arrival)
    )
    return (await session.execute(query)).all()
