"""The asset page: what the projection knows of one asset, and the detail the other services
hold (ingest's metadata, clean's quality report, audit's timeline and chain state), fetched
side by side with the caller's key. A service that fails leaves its part empty and is named
in ``problems``: the page still shows the rest."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from services.dashboard.context import Dashboard
from services.dashboard.domain.cleaning import thumbnail_url
from services.dashboard.repository import queries
from services.dashboard.use_cases.upstream import Upstream, call_upstream
from shared.auth import Principal
from shared.errors import ApiError

# Pages of an asset's audit timeline followed at most (the audit API answers in one today).
MAX_TIMELINE_PAGES = 20


async def visible_asset(
    dashboard: Dashboard, principal: Principal, asset_id: uuid.UUID
) -> dict[str, Any]:
    """The projection's row of an asset the caller may see; 404 otherwise (an asset of another
    dataset looks exactly like a missing one)."""
    async with dashboard.units.read() as session:
        row = await queries.asset_row(session, asset_id)
    if row is None or not _sees(principal, row.get("dataset_id")):
        raise ApiError(404, "asset_not_found", f"no asset {asset_id}")
    return row


def _sees(principal: Principal, dataset_id: uuid.UUID | None) -> bool:
    if dataset_id is None:
        return not principal.scoped
    return principal.sees(dataset_id)


SUMMARY_FIELDS = (
    "asset_id",
    "dataset_id",
    "dataset_slug",
    "filename",
    "sha256",
    "media_type",
    "size_bytes",
    "source",
    "uploaded_at",
    "verdict",
    "verdict_at",
    "decision",
    "trace_id",
)


async def asset_page(
    dashboard: Dashboard, principal: Principal, api_key: str, asset_id: uuid.UUID
) -> dict[str, Any]:
    """Everything the asset page shows."""
    row = await visible_asset(dashboard, principal, asset_id)
    s = dashboard.settings
    metadata, quality, timeline, chain = await asyncio.gather(
        call_upstream(dashboard, "ingest", "GET", f"{s.ingest_url}/v1/assets/{asset_id}", api_key),
        call_upstream(
            dashboard, "clean", "GET", f"{s.clean_url}/v1/assets/{asset_id}/quality", api_key
        ),
        _timeline(dashboard, api_key, asset_id),
        call_upstream(dashboard, "audit verify", "POST", f"{s.audit_url}/v1/audit/verify", api_key),
    )
    problems = [call.problem for call in (metadata, timeline, chain) if call.problem is not None]
    # No quality report yet is not a failure: clean has not judged the asset.
    if quality.problem is not None and quality.status != 404:
        problems.append(quality.problem)
    trace = row.get("trace_id")
    return {
        "asset": {field: row.get(field) for field in SUMMARY_FIELDS},
        "metadata": metadata.body,
        "quality": quality.body,
        "timeline": timeline.body,
        "chain": chain.body,
        "trace": {
            "trace_id": trace,
            "url": s.trace_url_template.format(trace_id=trace) if trace else None,
        },
        "thumbnail_url": thumbnail_url(asset_id),
        "problems": problems,
    }


async def _timeline(dashboard: Dashboard, api_key: str, asset_id: uuid.UUID) -> Upstream:
    """Audit's timeline of the asset, every page of it (bounded), as timeline entries."""
    url = f"{dashboard.settings.audit_url}/v1/audit/assets/{asset_id}/timeline"
    entries: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(MAX_TIMELINE_PAGES):
        page = await call_upstream(
            dashboard, "audit timeline", "GET", url, api_key, {"cursor": cursor} if cursor else None
        )
        if page.problem is not None:
            return page
        entries.extend(timeline_entry(record) for record in page.body.get("items", []))
        cursor = page.body.get("next_cursor")
        if not cursor:
            return Upstream(body=entries, status=200)
    return Upstream(
        body=entries, status=200, problem=f"audit timeline: cut at {MAX_TIMELINE_PAGES} pages"
    )


def timeline_entry(record: dict[str, Any]) -> dict[str, Any]:
    """An audit record as the page lists it: who did what, when, with which event."""
    return {
        "seq": record.get("seq"),
        "time": record.get("time"),
        "type": record.get("type"),
        "actor": record.get("actor"),
        "source": record.get("service"),
        "subject": record.get("subject"),
        "event_id": record.get("event_id"),
        "topic": record.get("topic"),
        "trace_id": record.get("trace_id"),
    }
