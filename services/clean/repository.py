"""All of clean's queries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from sqlalchemy import Float, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.clean.checks.video.fingerprint import VideoSignature
from services.clean.domain import ReportRow
from services.clean.models import (
    ImageFeatures,
    KnownDataset,
    Policy,
    QualityReport,
    VideoSignatureRow,
)
from services.clean.near_index import CROPS, HashRows
from services.clean.video_index import StoredSignature

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


async def insert_reports(session: AsyncSession, reports: Sequence[ReportRow]) -> None:
    """Store new quality reports (one statement for all)."""
    if reports:
        rows = [
            {
                **report,
                "phash": None if report["phash"] is None else to_signed(report["phash"]),
                "crop_hashes": None
                if report["crop_hashes"] is None
                else pack_crops(report["crop_hashes"]),
            }
            for report in reports
        ]
        await session.execute(insert(QualityReport), rows)


async def insert_features(
    session: AsyncSession, rows: Sequence[tuple[uuid.UUID, uuid.UUID, bytes]]
) -> None:
    """Store images' packed features: (asset id, dataset id, features), one statement."""
    if rows:
        values = [{"asset_id": a, "dataset_id": d, "features": f} for a, d, f in rows]
        await session.execute(insert(ImageFeatures).on_conflict_do_nothing(), values)


async def features_of(
    session: AsyncSession, asset_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, bytes]:
    """The stored features of these assets (those that have them)."""
    if not asset_ids:
        return {}
    query = select(ImageFeatures.asset_id, ImageFeatures.features).where(
        ImageFeatures.asset_id.in_(set(asset_ids))
    )
    return {asset: bytes(data) for asset, data in (await session.execute(query)).all()}


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
# Reports stored before the 85 % and 80 % crop regions (18 crop hashes) get their full hash repeated
# in the rest (never closer than the full hash), so every row has CROPS and the COPY stays fixed.
_HASHES_SINCE = (
    "SELECT arrival, asset_id, phash, CASE WHEN octet_length(crop_hashes) < $3 * 8"
    " THEN crop_hashes || decode(repeat(lpad(to_hex(phash), 16, '0'),"
    " $3 - octet_length(crop_hashes) / 8), 'hex') ELSE crop_hashes END"
    " FROM clean.quality_reports"
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

    await raw.copy_from_query(
        _HASHES_SINCE, ident, after_arrival, CROPS, output=collect, format="binary"
    )
    data = b"".join(chunks)
    body = data[_COPY_HEADER : len(data) - 2]  # the trailer is a field count of -1
    rows = np.frombuffer(body, _COPY_ROW)
    if len(rows) and not np.all(rows["crops_len"] == CROPS * 8):  # the table's CHECK holds this
        raise ValueError(f"a stored crop_hashes value is not {CROPS} hashes long")
    return HashRows(
        arrivals=rows["arrival"].astype(np.int64),
        asset_ids=np.ascontiguousarray(rows["asset_id"]),
        hashes=rows["phash"].astype(np.uint64),
        crops=rows["crops"].astype(np.uint64),
    )


async def insert_video_signatures(
    session: AsyncSession, rows: Sequence[tuple[uuid.UUID, uuid.UUID, int, VideoSignature]]
) -> None:
    """Store videos' fingerprints: (asset id, dataset id, arrival, signature) each."""
    if rows:
        await session.execute(
            insert(VideoSignatureRow),
            [
                {
                    "asset_id": asset_id,
                    "dataset_id": dataset_id,
                    "arrival": arrival,
                    "duration_seconds": signature.duration,
                    "samples": signature.pack(),
                    "fine_blocks": signature.pack_fine(),
                }
                for asset_id, dataset_id, arrival, signature in rows
            ],
        )


async def video_signatures_since(
    session: AsyncSession, ident: uuid.UUID, after_arrival: int
) -> list[StoredSignature]:
    """A dataset's video fingerprints that arrived after ``after_arrival``, in arrival order."""
    query = (
        select(
            VideoSignatureRow.arrival,
            VideoSignatureRow.asset_id,
            VideoSignatureRow.samples,
            VideoSignatureRow.duration_seconds,
            VideoSignatureRow.fine_blocks,
        )
        .where(VideoSignatureRow.dataset_id == ident, VideoSignatureRow.arrival > after_arrival)
        .order_by(VideoSignatureRow.arrival)
    )
    return [
        StoredSignature(arrival, asset_id, VideoSignature.unpack(samples, duration, fine))
        for arrival, asset_id, samples, duration, fine in (await session.execute(query)).all()
    ]


def pack_crops(crops: Sequence[int]) -> bytes:
    """Crop hashes as stored: 8 big-endian bytes each."""
    return np.array(crops, ">u8").tobytes()


async def report(session: AsyncSession, asset_id: uuid.UUID) -> QualityReport | None:
    """An asset's quality report."""
    return await session.get(QualityReport, asset_id)


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
    """(original, copy, code, distance, video overlap) for every duplicate found in the
    dataset."""
    query = (
        select(
            QualityReport.duplicate_of,
            QualityReport.asset_id,
            QualityReport.duplicate_code,
            QualityReport.duplicate_distance,
            QualityReport.duplicate_overlap,
        )
        .where(QualityReport.dataset_id == ident, QualityReport.duplicate_of.is_not(None))
        .order_by(QualityReport.arrival)
    )
    return (await session.execute(query)).all()


async def status_counts(session: AsyncSession, ident: uuid.UUID) -> dict[str, int]:
    """How many of a dataset's reports have each status."""
    query = (
        select(QualityReport.status, func.count())
        .where(QualityReport.dataset_id == ident)
        .group_by(QualityReport.status)
    )
    return {status: count for status, count in (await session.execute(query)).all()}


_FINDING_COUNTS = """
SELECT finding.value ->> 'code' AS code, count(*) AS n
FROM clean.quality_reports AS report
CROSS JOIN LATERAL jsonb_array_elements(report.{column}) WITH ORDINALITY AS finding(value, place)
WHERE report.dataset_id = :dataset
GROUP BY code
ORDER BY n DESC, min(ARRAY[report.arrival, finding.place])
"""


async def finding_counts(
    session: AsyncSession, ident: uuid.UUID, column: Literal["reasons", "flags"]
) -> dict[str, int]:
    """How many of a dataset's reports carry each reason (or flag) code: most frequent
    first, ties in the order the codes first appeared (by arrival)."""
    query = text(_FINDING_COUNTS.format(column=column))
    return {code: n for code, n in (await session.execute(query, {"dataset": ident})).all()}


_PERCENTILES = text(
    """
SELECT metric.key, percentile_cont(:fractions) WITHIN GROUP (ORDER BY metric.value::float8)
FROM clean.quality_reports AS report
CROSS JOIN LATERAL jsonb_each(report.metrics) AS metric(key, value)
WHERE report.dataset_id = :dataset
GROUP BY metric.key
"""
).bindparams(bindparam("fractions", type_=ARRAY(Float)))


async def metric_percentiles(
    session: AsyncSession, ident: uuid.UUID, fractions: Sequence[float]
) -> dict[str, list[float]]:
    """Each metric's values over a dataset's reports at ``fractions`` (0 = min, 1 = max),
    interpolated linearly between the closest values; metrics by name."""
    params = {"dataset": ident, "fractions": list(fractions)}
    rows = (await session.execute(_PERCENTILES, params)).all()
    return {metric: [float(v) for v in values] for metric, values in sorted(rows)}
