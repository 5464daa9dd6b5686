"""Reads of the projections for the pages: each is one statement, filtered by dataset and
time window, aggregated in Postgres (a page never pulls rows it only counts)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    func,
    literal_column,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.dashboard.domain.funnel import Split
from services.dashboard.models import (
    assets,
    datasets,
    drops,
    funnel_assets,
    funnel_hours,
    progress,
    stage_minutes,
    versions,
)

# date_bin's origin: buckets start at whole multiples of their width since this instant
_ORIGIN = datetime.fromisoformat("2000-01-01T00:00:00+00:00")


@dataclass(frozen=True)
class Window:
    """Rows of ``datasets`` (None: all) with a time in [since, until) (None: open)."""

    datasets: tuple[uuid.UUID, ...] | None
    since: datetime | None
    until: datetime | None

    def on(self, dataset: Any, at: Any) -> list[ColumnElement[bool]]:
        """The conditions for a table's dataset and time columns."""
        conditions: list[ColumnElement[bool]] = [at.is_not(None)]
        if self.datasets is not None:
            conditions.append(dataset.in_(self.datasets))
        if self.since is not None:
            conditions.append(at >= self.since)
        if self.until is not None:
            conditions.append(at < self.until)
        return conditions


async def dataset_by_slug(session: AsyncSession, slug: str) -> uuid.UUID | None:
    """The id of the dataset called ``slug``."""
    found = await session.scalar(select(datasets.c.dataset_id).where(datasets.c.slug == slug))
    return found


async def list_datasets(
    session: AsyncSession, visible: Sequence[uuid.UUID] | None
) -> list[dict[str, Any]]:
    """Datasets with their asset counts, by slug."""
    # assets stored, from the per-minute stage counts (a few rows per dataset and minute,
    # not one per asset: the page asks for this list first)
    counts = (
        select(stage_minutes.c.dataset_id, func.sum(stage_minutes.c.events).label("assets"))
        .where(stage_minutes.c.stage == "stored")
        .group_by(stage_minutes.c.dataset_id)
        .subquery()
    )
    query = (
        select(
            datasets.c.dataset_id,
            datasets.c.slug,
            datasets.c.name,
            datasets.c.created_at,
            func.coalesce(counts.c.assets, 0).label("assets"),
        )
        .select_from(datasets.outerjoin(counts, counts.c.dataset_id == datasets.c.dataset_id))
        .order_by(datasets.c.slug)
    )
    if visible is not None:
        query = query.where(datasets.c.dataset_id.in_(visible))
    return [dict(row._mapping) for row in await session.execute(query)]


async def funnel_marks(
    session: AsyncSession, datasets: tuple[uuid.UUID, ...] | None, split: Split
) -> dict[str, int]:
    """Assets per funnel mark (see domain/funnel.py) of ``datasets`` (None: all) uploaded in
    a window cut at whole hours: the counters of its whole hours, plus the asset rows of its
    partial hours at the edges. One statement."""
    parts: list[Select[Any]] = []
    if split.hours is not None:
        f = funnel_hours
        whole = Window(datasets, *split.hours)
        parts.append(
            select(f.c.mark, func.sum(f.c.assets).label("n"))
            .where(*whole.on(f.c.dataset_id, f.c.hour))
            .group_by(f.c.mark)
        )
    for since, until in split.edges:
        edge = Window(datasets, since, until)
        marks = (
            select(func.unnest(funnel_assets.c.marks).label("mark"))
            .select_from(assets.join(funnel_assets, funnel_assets.c.asset_id == assets.c.asset_id))
            .where(*edge.on(assets.c.dataset_id, assets.c.uploaded_at))
            .subquery()
        )
        parts.append(select(marks.c.mark, func.count().label("n")).group_by(marks.c.mark))
    if not parts:
        return {}
    every = union_all(*parts).subquery()
    query = select(every.c.mark, func.sum(every.c.n)).group_by(every.c.mark)
    return {str(mark): int(n) for mark, n in await session.execute(query)}


async def drop_reasons(
    session: AsyncSession, window: Window, slugs: Sequence[str] | None
) -> dict[str, int]:
    """Refused landing-bucket drops by reason (of datasets named ``slugs``; None: all)."""
    conditions = Window(None, window.since, window.until).on(drops.c.dataset_slug, drops.c.at)
    if slugs is not None:
        conditions.append(drops.c.dataset_slug.in_(slugs))
    query = select(drops.c.reason, func.count()).where(*conditions).group_by(drops.c.reason)
    return {reason: int(n) for reason, n in await session.execute(query)}


async def exported_items(session: AsyncSession, dataset_ids: Sequence[uuid.UUID] | None) -> int:
    """Items of the latest frozen version of each dataset."""
    latest = select(
        versions.c.dataset_id,
        func.max(versions.c.version).label("version"),
    ).group_by(versions.c.dataset_id)
    if dataset_ids is not None:
        latest = latest.where(versions.c.dataset_id.in_(dataset_ids))
    newest = latest.subquery()
    query = select(func.coalesce(func.sum(versions.c.item_count), 0)).select_from(
        versions.join(
            newest,
            and_(
                newest.c.dataset_id == versions.c.dataset_id,
                newest.c.version == versions.c.version,
            ),
        )
    )
    return int(await session.scalar(query) or 0)


def _bucket(column: Any, seconds: int) -> Any:
    width: Any = literal_column(f"interval '{int(seconds)} seconds'")
    return func.date_bin(width, column, _ORIGIN)


async def throughput(
    session: AsyncSession, window: Window, bucket_seconds: int
) -> list[dict[str, Any]]:
    """Events per stage per bucket: ``[{"stage", "t", "events"}]`` in time order."""
    s = stage_minutes
    t = _bucket(s.c.minute, bucket_seconds).label("t")
    query = (
        select(s.c.stage, t, func.sum(s.c.events).label("events"))
        .where(*window.on(s.c.dataset_id, s.c.minute))
        .group_by(s.c.stage, t)
        .order_by(t)
    )
    return [
        {"stage": row.stage, "t": row._mapping["t"], "events": int(row.events)}
        for row in await session.execute(query)
    ]


async def first_event_time(session: AsyncSession, window: Window) -> datetime | None:
    """When the earliest counted event in the window happened."""
    s = stage_minutes
    found: datetime | None = await session.scalar(
        select(func.min(s.c.minute)).where(*window.on(s.c.dataset_id, s.c.minute))
    )
    return found


def _latency_query(start: Any, end: Any, window: Window, bucket_seconds: int) -> Select[Any]:
    seconds = func.extract("epoch", end - start)
    t = _bucket(end, bucket_seconds).label("t")
    return (
        select(
            t,
            func.percentile_cont(0.5).within_group(seconds).label("p50"),
            func.percentile_cont(0.95).within_group(seconds).label("p95"),
            func.count().label("count"),
        )
        .where(start.is_not(None), *window.on(assets.c.dataset_id, end))
        .group_by(t)
        .order_by(t)
    )


async def latency(
    session: AsyncSession, window: Window, bucket_seconds: int
) -> dict[str, list[dict[str, Any]]]:
    """p50/p95 seconds of upload→cleaned (by verdict time) and cleaned→dispatched (by first
    dispatch time), per bucket."""
    a = assets
    series = {
        "upload_to_cleaned": _latency_query(
            a.c.uploaded_at, a.c.verdict_at, window, bucket_seconds
        ),
        "cleaned_to_dispatched": _latency_query(
            a.c.verdict_at, a.c.first_dispatched_at, window, bucket_seconds
        ),
    }
    result: dict[str, list[dict[str, Any]]] = {}
    for name, query in series.items():
        result[name] = [
            {
                "t": row._mapping["t"],
                "p50": float(row.p50),
                "p95": float(row.p95),
                "count": int(row._mapping["count"]),
            }
            for row in await session.execute(query)
        ]
    return result


async def changes(session: AsyncSession) -> dict[str, Any]:
    """The change counter the page polls."""
    row = (await session.execute(select(progress.c.events_applied, progress.c.changed_at))).one()
    return {"events_applied": int(row.events_applied), "changed_at": row.changed_at}


ASSET_SUMMARY = (
    assets.c.asset_id,
    assets.c.dataset_id,
    datasets.c.slug.label("dataset_slug"),
    assets.c.filename,
    assets.c.sha256,
    assets.c.media_type,
    assets.c.size_bytes,
    assets.c.source,
    assets.c.uploaded_at,
    assets.c.verdict,
    assets.c.verdict_at,
    assets.c.decision,
    assets.c.trace_id,
)


async def search_assets(
    session: AsyncSession, text_query: str, visible: Sequence[uuid.UUID] | None, limit: int
) -> list[dict[str, Any]]:
    """Assets whose id is, whose sha256 starts with, or whose file name holds ``text_query``;
    exact matches first, then the newest."""
    needle = text_query.strip()
    matches: list[ColumnElement[bool]] = []
    with contextlib.suppress(ValueError):
        matches.append(assets.c.asset_id == uuid.UUID(needle))
    lowered = needle.lower()
    if len(lowered) >= 6 and all(c in "0123456789abcdef" for c in lowered):
        matches.append(assets.c.sha256.startswith(lowered))
    escaped = lowered.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    matches.append(func.lower(assets.c.filename).like(f"%{escaped}%", escape="\\"))
    exact = or_(assets.c.sha256 == lowered, func.lower(assets.c.filename) == lowered)
    query = (
        select(*ASSET_SUMMARY)
        .select_from(assets.outerjoin(datasets, datasets.c.dataset_id == assets.c.dataset_id))
        .where(or_(*matches), assets.c.uploaded_at.is_not(None))
        .order_by(exact.desc(), assets.c.uploaded_at.desc(), assets.c.asset_id)
        .limit(limit)
    )
    if visible is not None:
        query = query.where(assets.c.dataset_id.in_(visible))
    return [dict(row._mapping) for row in await session.execute(query)]


async def asset_row(session: AsyncSession, asset_id: uuid.UUID) -> dict[str, Any] | None:
    """Everything the projection knows of one asset (None: never heard of it)."""
    query = (
        select(assets, datasets.c.slug.label("dataset_slug"))
        .select_from(assets.outerjoin(datasets, datasets.c.dataset_id == assets.c.dataset_id))
        .where(assets.c.asset_id == asset_id)
    )
    row = (await session.execute(query)).first()
    return None if row is None else dict(row._mapping)


async def server_version(session: AsyncSession) -> str:
    """Postgres's version string."""
    return str(await session.scalar(text("SELECT version()")))
