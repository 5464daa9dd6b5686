"""The vendors page: every vendor the projections know (name, kind, capacity) with QC's
scorecard over the window and its day-by-day trend, read from QC's API with the caller's key.

QC counts per vendor and job, not per dataset: a page narrowed to a dataset lists the vendors
that worked on it, with their scorecards over every dataset.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import httpx

from services.dashboard.context import Dashboard
from services.dashboard.repository import backlog as repo
from services.dashboard.use_cases.filters import Filter
from services.dashboard.use_cases.health import describe

# Trend calls to QC in flight at once.
TREND_CALLS = 8


class QcUnavailable(Exception):
    """QC did not answer, or refused."""


def _window(since: datetime | None, until: datetime | None) -> dict[str, str]:
    params = {}
    if since is not None:
        params["since"] = since.isoformat()
    if until is not None:
        params["until"] = until.isoformat()
    return params


async def _qc_get(
    http: httpx.AsyncClient, url: str, api_key: str, params: dict[str, str]
) -> httpx.Response:
    try:
        response = await http.get(url, params=params, headers={"X-API-Key": api_key})
    except httpx.HTTPError as exc:
        raise QcUnavailable(f"QC did not answer: {describe(exc)}") from exc
    if response.status_code >= 500 or response.status_code in (401, 403):
        raise QcUnavailable(f"QC answered {response.status_code}: {response.text[:200]}")
    return response


async def _trend(
    http: httpx.AsyncClient,
    url: str,
    api_key: str,
    params: dict[str, str],
    limit: asyncio.Semaphore,
) -> list[dict[str, Any]]:
    async with limit:
        response = await _qc_get(http, url, api_key, params)
    if response.status_code != 200:  # 404: nothing counted for the vendor
        return []
    trend: list[dict[str, Any]] = response.json().get("trend", [])
    return trend


async def vendors(dashboard: Dashboard, chosen: Filter, api_key: str) -> dict[str, Any]:
    """Vendors merged with their scorecards; QC down leaves the scorecards out and says so."""
    window = chosen.window
    async with dashboard.units.read() as session:
        known = await repo.list_vendors(session, window.datasets)
    items: dict[uuid.UUID, dict[str, Any]] = {
        v["vendor_id"]: {**v, "scorecard": None, "trend": []} for v in known
    }
    qc = dashboard.settings.qc_url.rstrip("/")
    params = _window(window.since, window.until)
    error = None
    try:
        response = await _qc_get(dashboard.http, f"{qc}/v1/scorecards", api_key, params)
        if response.status_code != 200:
            raise QcUnavailable(f"QC answered {response.status_code}: {response.text[:200]}")
        cards = {uuid.UUID(c["vendor_id"]): c for c in response.json()["items"]}
        for vendor_id, card in cards.items():
            if vendor_id not in items and window.datasets is None:
                # QC counted a vendor the projections have not read yet
                items[vendor_id] = {
                    "vendor_id": vendor_id,
                    "name": None,
                    "kind": None,
                    "capacity": None,
                    "trend": [],
                }
            if vendor_id in items:
                items[vendor_id]["scorecard"] = {
                    "figures": card["figures"],
                    "counters": card["counters"],
                }
        limit = asyncio.Semaphore(TREND_CALLS)
        scored = [v for v in items if items[v]["scorecard"] is not None]
        trends = await asyncio.gather(
            *(
                _trend(dashboard.http, f"{qc}/v1/vendors/{v}/scorecard", api_key, params, limit)
                for v in scored
            )
        )
        for vendor_id, trend in zip(scored, trends, strict=True):
            items[vendor_id]["trend"] = trend
    except QcUnavailable as exc:
        error = str(exc)
    return {"items": list(items.values()), "error": error}
