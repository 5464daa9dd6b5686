"""The cleaning page: rejections and flags by reason over time, the rejected-image grid,
metric histograms and duplicate groups."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from services.dashboard.context import Dashboard
from services.dashboard.domain import cleaning as shape
from services.dashboard.repository import cleaning as repo
from services.dashboard.use_cases.filters import Filter
from services.dashboard.use_cases.overview import bucket_seconds
from services.dashboard.use_cases.upstream import call_upstream
from shared.paging import Cursor


async def reasons(dashboard: Dashboard, chosen: Filter) -> dict[str, Any]:
    """Blocking reasons of rejected assets and flags of any asset, per bucket of verdict time."""
    window = chosen.window
    until = window.until or datetime.now(UTC)
    async with dashboard.units.read() as session:
        since = window.since or await repo.first_verdict_time(session, window) or until
        width = bucket_seconds(since, until)
        rows = await repo.reasons_over_time(session, window, width)
    totals, series = shape.reason_series(rows)
    return {
        "dataset": chosen.slug,
        "since": window.since,
        "until": window.until,
        "bucket_seconds": width,
        "totals": totals,
        "series": series,
    }


async def rejected(
    dashboard: Dashboard, chosen: Filter, limit: int, cursor: str | None
) -> dict[str, Any]:
    """A page of rejected assets, newest verdict first."""
    after = Cursor.decode(cursor) if cursor else None
    async with dashboard.units.read() as session:
        rows = await repo.rejected_assets(session, chosen.window, after, limit + 1)
    page = rows[:limit]
    items = [{**row, "thumbnail_url": shape.thumbnail_url(row["asset_id"])} for row in page]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = Cursor(last["verdict_at"], last["asset_id"]).encode()
    return {"items": items, "next_cursor": next_cursor}


async def histograms(
    dashboard: Dashboard, chosen: Filter, bins: int, metric: str | None
) -> dict[str, Any]:
    """A histogram per metric of the window's assets (by verdict time)."""
    async with dashboard.units.read() as session:
        rows = await repo.metric_histograms(session, chosen.window, bins, metric)
    ranges: dict[str, tuple[int, float, float]] = {}
    counted: dict[str, dict[int, int]] = {}
    for name, n, low, high, bin_no, in_bin in rows:
        ranges[name] = (n, low, high)
        if bin_no is not None and in_bin is not None:
            counted.setdefault(name, {})[bin_no] = in_bin
    return {
        "dataset": chosen.slug,
        "since": chosen.window.since,
        "until": chosen.window.until,
        "metrics": [
            shape.histogram(name, n, low, high, bins, counted.get(name, {}))
            for name, (n, low, high) in ranges.items()
        ],
    }


async def duplicates(dashboard: Dashboard, chosen: Filter, api_key: str) -> dict[str, Any]:
    """Clean's duplicate groups of one dataset, with file names and thumbnails; when clean
    does not answer, no groups and an ``error`` saying why."""
    assert chosen.slug is not None
    url = f"{dashboard.settings.clean_url}/v1/datasets/{chosen.slug}/duplicates"
    answer = await call_upstream(dashboard, "clean", "GET", url, api_key)
    if answer.status == 404:
        # clean has not heard of the dataset yet: nothing of it was judged
        return {"dataset": chosen.slug, "groups": [], "error": None}
    if answer.problem is not None or not isinstance(answer.body, dict):
        return {"dataset": chosen.slug, "groups": [], "error": answer.problem}
    groups = answer.body.get("groups", [])
    ids = {uuid.UUID(str(g["original"])) for g in groups} | {
        uuid.UUID(str(c["asset_id"])) for g in groups for c in g.get("copies", [])
    }
    async with dashboard.units.read() as session:
        names = await repo.filenames(session, sorted(ids))
    return {"dataset": chosen.slug, "groups": shape.duplicate_groups(groups, names), "error": None}
