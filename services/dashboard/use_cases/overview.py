"""The funnel, throughput and latency pages, the dataset list, search and the change counter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.dashboard.context import Dashboard
from services.dashboard.domain.funnel import reason_counts, split_window, stage_counts
from services.dashboard.repository import queries
from services.dashboard.use_cases.filters import Filter, visible_datasets
from shared.auth import Principal

# Bucket widths a chart may use, in seconds; the narrowest giving at most MAX_BUCKETS points.
BUCKET_STEPS = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400)
MAX_BUCKETS = 180

# The funnel's stages in pipeline order, with what each counts.
STAGES = (
    ("uploaded", "files that reached Conveyor: stored assets plus refused landing-bucket drops"),
    ("stored", "assets stored in conveyor-raw"),
    ("cleaned", "assets that passed cleaning"),
    ("rejected", "assets rejected by cleaning"),
    ("in_labeling", "assets with at least one labeling task"),
    ("submitted", "assets with at least one vendor answer"),
    ("accepted", "assets whose labels QC accepted"),
    ("rework", "assets QC sent back for rework (latest decision)"),
    ("qc_rejected", "assets whose labels a reviewer rejected"),
    ("exported", "items in the latest frozen version of the dataset(s)"),
)


def bucket_seconds(since: datetime, until: datetime) -> int:
    """The chart bucket width for a window."""
    span = max((until - since).total_seconds(), 1.0)
    for step in BUCKET_STEPS:
        if span / step <= MAX_BUCKETS:
            return step
    return BUCKET_STEPS[-1]


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


async def funnel(dashboard: Dashboard, chosen: Filter) -> dict[str, Any]:
    """Counts per stage, and what was lost where and why."""
    window = chosen.window
    async with dashboard.units.read() as session:
        marks = await queries.funnel_marks(
            session, window.datasets, split_window(window.since, window.until)
        )
        slugs = None if chosen.slug is None else [chosen.slug]
        if slugs is None and window.datasets is not None:
            slugs = [d["slug"] for d in await queries.list_datasets(session, window.datasets)]
        dropped = await queries.drop_reasons(session, window, slugs)
        exported = await queries.exported_items(session, window.datasets)
    counts = stage_counts(marks)
    rejected = reason_counts(marks)
    drops = sum(dropped.values())
    counts["uploaded"] = counts["stored"] + drops
    counts["exported"] = exported
    stages = [
        {"stage": name, "count": counts[name], "meaning": meaning} for name, meaning in STAGES
    ]
    losses = [
        {
            "stage": "stored",
            "lost": drops,
            "share": _share(drops, counts["uploaded"]),
            "reasons": _ranked(dropped),
        },
        {
            "stage": "cleaning",
            "lost": counts["rejected"],
            "share": _share(counts["rejected"], counts["stored"]),
            "reasons": _ranked(rejected),
        },
        {
            "stage": "qc",
            "lost": counts["qc_rejected"],
            "share": _share(counts["qc_rejected"], counts["submitted"]),
            "reasons": [{"code": "rejected_by_reviewer", "count": counts["qc_rejected"]}]
            if counts["qc_rejected"]
            else [],
        },
    ]
    waiting = {
        "cleaning": counts["cleaning"],
        "labeling": max(counts["cleaned"] - counts["in_labeling"], 0),
        "rework": counts["rework"],
    }
    return {
        "dataset": chosen.slug,
        **_window(chosen),
        "stages": stages,
        "losses": losses,
        "waiting": waiting,
    }


def _ranked(counts: dict[str, int]) -> list[dict[str, Any]]:
    return [{"code": c, "count": n} for c, n in sorted(counts.items(), key=lambda i: (-i[1], i[0]))]


def _window(chosen: Filter) -> dict[str, Any]:
    return {"since": chosen.window.since, "until": chosen.window.until}


async def _span(dashboard: Dashboard, chosen: Filter) -> tuple[datetime, datetime]:
    window = chosen.window
    if window.since is not None:
        return window.since, window.until or datetime.now(UTC)
    async with dashboard.units.read() as session:
        first = await queries.first_event_time(session, window)
    until = window.until or datetime.now(UTC)
    return (first or until), until


async def throughput(dashboard: Dashboard, chosen: Filter) -> dict[str, Any]:
    """Events per stage per bucket, and the bucket width."""
    since, until = await _span(dashboard, chosen)
    width = bucket_seconds(since, until)
    async with dashboard.units.read() as session:
        rows = await queries.throughput(session, chosen.window, width)
    series: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        series.setdefault(row["stage"], []).append({"t": row["t"], "events": row["events"]})
    return {
        "dataset": chosen.slug,
        **_window(chosen),
        "bucket_seconds": width,
        "series": [{"stage": s, "points": p} for s, p in series.items()],
    }


async def latency(dashboard: Dashboard, chosen: Filter) -> dict[str, Any]:
    """p50/p95 of upload→cleaned and cleaned→dispatched per bucket."""
    since, until = await _span(dashboard, chosen)
    width = bucket_seconds(since, until)
    async with dashboard.units.read() as session:
        series = await queries.latency(session, chosen.window, width)
    return {
        "dataset": chosen.slug,
        **_window(chosen),
        "bucket_seconds": width,
        "series": [{"name": name, "points": points} for name, points in series.items()],
    }


async def datasets(dashboard: Dashboard, principal: Principal) -> list[dict[str, Any]]:
    """The datasets the caller may see, with asset counts."""
    async with dashboard.units.read() as session:
        return await queries.list_datasets(session, visible_datasets(principal))


async def search(
    dashboard: Dashboard, principal: Principal, text: str, limit: int
) -> list[dict[str, Any]]:
    """Assets by id, sha256 (or its first 6+ hex digits) or file name."""
    async with dashboard.units.read() as session:
        return await queries.search_assets(session, text, visible_datasets(principal), limit)


async def changes(dashboard: Dashboard) -> dict[str, Any]:
    """How many events the projections have applied, and when they last changed."""
    async with dashboard.units.read() as session:
        return await queries.changes(session)
