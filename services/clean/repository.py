"""All of clean's queries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.clean.models import KnownDataset, Policy, QualityReport
from services.clean.near_index import CROPS, HashRows

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


async def next_arrivals(session: AsyncSession, count: int) -> list[int]:
    """``count`` numbers that order assets by when clean saw them (first copy wins)."""
    if count == 0:
        return []
    query = text("SELECT nextval('clean.arrival_seq') FROM generate_series(1, :n)")
    return sorted(int(v) for v in (await session.execute(query, {"n": count})).scalars())


async def first_with_pixels_among(
    session: AsyncSession, ident: uuid.UUID, digests: Sequence[str]
) -> dict[str, uuid.UUID]:
    """For each digest already stored in the dataset, the earliest asset with those pixels."""
    if not digests:
        return {}
    query = (
        select(QualityReport.pixel_sha256, QualityReport.asset_id)
        .where(QualityReport.dataset_id == ident, QualityReport.pixel_sha256.in_(set(digests)))
        .order_by(QualityReport.pixel_sha256, QualityReport.arrival)
        .distinct(QualityReport.pixel_sha256)
    )
    return {digest: asset for digest, asset in (await session.execute(query)).all()}


async def insert_reports(session: AsyncSession, reports: Sequence[dict[str, Any]]) -> None:
    """Store new quality reports (one statement for all)."""
    if reports:
        await session.execute(insert(QualityReport), list(reports))


_COPY_HEADER = 19  # signature, flags and header-extension length of a binary COPY
_COPY_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("arrival_len", ">i4"),
        ("arrival", ">i8"),
        ("id_len", ">i4"),
        ("asset_id", "u1", 16),
        ("phash_len", ">i4"),
        ("phash", ">u8"),
        ("crops_len", ">i4"),
        ("crops", ">u8", CROPS),
    ]
)
_HASHES_SINCE = (
    "SELECT arrival, asset_id, phash, crop_hashes FROM clean.quality_reports"
    " WHERE dataset_id = $1 AND arrival > $2 AND phash IS NOT NULL ORDER BY arrival"
)


async def hashes_since(session: AsyncSession, ident: uuid.UUID, after_arrival: int) -> HashRows:
    """A dataset's perceptual hashes that arrived after ``after_arrival``, in arrival order.

    Read with a binary ``COPY`` whose fixed-width rows NumPy takes apart in place: a million
    hashes come over in about a second instead of the tens of seconds row objects would take.
    """
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    chunks: list[bytes] = []

    async def collect(chunk: bytes) -> None:
        chunks.append(chunk)

    await raw.copy_from_query(_HASHES_SINCE, ident, after_arrival, output=collect, format="binary")
    data = b"".join(chunks)
    body = data[_COPY_HEADER : len(data) - 2]  # the trailer is a field count of -1
    rows = np.frombuffer(body, _COPY_ROW)
    if len(rows) and not np.all(rows["crops_len"] == CROPS * 8):  # the table's CHECK holds this
        raise ValueError("a stored crop_hashes value is not 18 hashes long")
    return HashRows(
        arrivals=rows["arrival"].astype(np.int64),
        asset_ids=np.ascontiguousarray(rows["asset_id"]),
        hashes=rows["phash"].astype(np.uint64),
        crops=rows["crops"].astype(np.uint64),
    )


def pack_crops(crops: Sequence[int]) -> bytes:
    """Crop hashes as stored: 8 big-endian bytes each."""
    return np.array(crops, ">u8").tobytes()


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
