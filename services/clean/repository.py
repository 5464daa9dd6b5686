"""All of clean's queries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Integer, SmallInteger, bindparam, cast, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY, insert
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


async def band_candidates(
    session: AsyncSession, ident: uuid.UUID, keys: Sequence[tuple[int, int]]
) -> list[tuple[uuid.UUID, int]]:
    """Assets sharing at least one probed band value, oldest first, as (id, unsigned hash).

    The probe keys travel as two arrays joined through ``unnest``: one cached statement,
    instead of compiling a several-hundred-element ``IN`` list on every call.
    """
    probe = (
        func.unnest(
            cast(bindparam("bands", [b for b, _ in keys]), ARRAY(SmallInteger)),
            cast(bindparam("vals", [v for _, v in keys]), ARRAY(Integer)),
        )
        .table_valued("band", "value")
        .render_derived(name="k")
    )
    arrival = func.min(HashBand.arrival).label("arrival")
    query = (
        select(HashBand.asset_id, HashBand.phash, arrival)
        .join(probe, (HashBand.band == probe.c.band) & (HashBand.value == probe.c.value))
        .where(HashBand.dataset_id == ident)
        .group_by(HashBand.asset_id, HashBand.phash)
        .order_by(arrival)
    )
    return [(row[0], to_unsigned(row[1])) for row in (await session.execute(query)).all()]


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
