"""Reads of the assets projection for the cleaning and asset pages; each is one statement."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Float, String, func, literal, select, true, tuple_, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from services.dashboard.models import assets, datasets
from services.dashboard.repository.queries import Window, _bucket
from shared.paging import Cursor


def _findings(column: Any, kind: str, window: Window, bucket_seconds: int) -> Any:
    """One row per finding in ``column`` (a JSONB array) of the window's assets."""
    finding = func.jsonb_array_elements(column).table_valued("value").alias(f"{kind}_finding")
    query = (
        select(
            literal(kind, String).label("kind"),
            finding.c.value.op("->>")("code").label("code"),
            _bucket(assets.c.verdict_at, bucket_seconds).label("t"),
        )
        .select_from(assets)
        .join(finding, true())
        .where(
            func.jsonb_typeof(column) == "array",
            *window.on(assets.c.dataset_id, assets.c.verdict_at),
        )
    )
    return query


async def reasons_over_time(
    session: AsyncSession, window: Window, bucket_seconds: int
) -> list[tuple[str, str, Any, int]]:
    """``(kind, code, bucket, count)``: the blocking reasons of rejected assets (kind
    ``rejected``) and the flags of every asset (kind ``flagged``), by verdict time."""
    rejected = _findings(assets.c.reasons, "rejected", window, bucket_seconds).where(
        assets.c.verdict == "rejected"
    )
    flagged = _findings(assets.c.flags, "flagged", window, bucket_seconds)
    found = union_all(rejected, flagged).subquery("found")
    query = (
        select(found.c.kind, found.c.code, found.c.t, func.count())
        .group_by(found.c.kind, found.c.code, found.c.t)
        .order_by(found.c.t)
    )
    return [(kind, code, t, int(n)) for kind, code, t, n in await session.execute(query)]


async def rejected_assets(
    session: AsyncSession, window: Window, after: Cursor | None, limit: int
) -> list[dict[str, Any]]:
    """Rejected assets, newest verdict first, after the cursor's (verdict_at, asset_id)."""
    a = assets
    query = (
        select(
            a.c.asset_id,
            datasets.c.slug.label("dataset_slug"),
            a.c.filename,
            a.c.media_type,
            a.c.verdict_at,
            a.c.reasons,
        )
        .select_from(a.outerjoin(datasets, datasets.c.dataset_id == a.c.dataset_id))
        .where(a.c.verdict == "rejected", *window.on(a.c.dataset_id, a.c.verdict_at))
        .order_by(a.c.verdict_at.desc(), a.c.asset_id.desc())
        .limit(limit)
    )
    if after is not None:
        query = query.where(tuple_(a.c.verdict_at, a.c.asset_id) < (after.created_at, after.id))
    return [dict(row._mapping) for row in await session.execute(query)]


async def metric_histograms(
    session: AsyncSession, window: Window, bins: int, metric: str | None
) -> list[tuple[str, int, float, float, int | None, int | None]]:
    """``(metric, count, min, max, bin, count in bin)`` for every numeric metric of the
    window's assets (by verdict time), binned between the metric's own min and max in one
    statement; bins are 1-based, the maximum falls in the last one, empty bins are absent."""
    a = assets
    if metric is None:
        entry = func.jsonb_each(a.c.metrics).table_valued("key", "value").alias("entry")
        values = (
            select(entry.c.key.label("metric"), entry.c.value.label("value"))
            .select_from(a)
            .join(entry, true())
            .where(func.jsonb_typeof(a.c.metrics) == "object")
        )
    else:
        picked = a.c.metrics.op("->")(metric)
        values = select(literal(metric, String).label("metric"), picked.label("value")).where(
            func.jsonb_typeof(a.c.metrics) == "object", picked.is_not(None)
        )
    values = values.where(*window.on(a.c.dataset_id, a.c.verdict_at))
    raw = values.subquery("raw")
    numbers = (
        select(raw.c.metric, raw.c.value.cast(Float).label("v"))
        .where(func.jsonb_typeof(raw.c.value) == "number")
        .cte("numbers")
    )
    ranges = (
        select(
            numbers.c.metric,
            func.count().label("n"),
            func.min(numbers.c.v).label("lo"),
            func.max(numbers.c.v).label("hi"),
        )
        .group_by(numbers.c.metric)
        .cte("ranges")
    )
    # width_bucket puts the maximum itself in bin bins + 1: it belongs to the last bin.
    bin_no = func.least(func.width_bucket(numbers.c.v, ranges.c.lo, ranges.c.hi, bins), bins).label(
        "bin"
    )
    binned = (
        select(numbers.c.metric, bin_no, func.count().label("in_bin"))
        .select_from(numbers.join(ranges, ranges.c.metric == numbers.c.metric))
        .where(ranges.c.hi > ranges.c.lo)
        .group_by(numbers.c.metric, bin_no)
        .cte("binned")
    )
    query = (
        select(ranges.c.metric, ranges.c.n, ranges.c.lo, ranges.c.hi, binned.c.bin, binned.c.in_bin)
        .select_from(ranges.outerjoin(binned, binned.c.metric == ranges.c.metric))
        .order_by(ranges.c.metric, binned.c.bin)
    )
    return [
        (str(m), int(n), float(lo), float(hi), b, None if c is None else int(c))
        for m, n, lo, hi, b, c in await session.execute(query)
    ]


async def filenames(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[str, str | None]:
    """File names of assets by id (those the projection knows)."""
    if not ids:
        return {}
    query = select(assets.c.asset_id, assets.c.filename).where(assets.c.asset_id.in_(ids))
    return {str(ident): name for ident, name in await session.execute(query)}


async def first_verdict_time(session: AsyncSession, window: Window) -> Any:
    """The earliest verdict in the window (None: no verdict)."""
    return await session.scalar(
        select(func.min(assets.c.verdict_at)).where(
            *window.on(assets.c.dataset_id, assets.c.verdict_at)
        )
    )
