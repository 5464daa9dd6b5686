"""Audit's HTTP routes."""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BeforeValidator

from services.audit.context import Audit
from services.audit.repository import RecordFilter
from services.audit.schemas import RecordPage, Timeline, VerifyResult
from services.audit.use_cases import queries, verification
from shared.auth import Principal, Role, require
from shared.errors import ApiError, error_responses

router = APIRouter(tags=["audit"])


def get_audit(request: Request) -> Audit:
    """The use cases' dependencies, built in the lifespan."""
    audit: Audit = request.app.state.audit
    return audit


AuditDep = Annotated[Audit, Depends(get_audit)]
Viewer = Annotated[Principal, require(Role.viewer)]

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_8601(value: object) -> object:
    """Refuses what pydantic would also read as a time but ISO 8601 is not (``0.5``: epoch)."""
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("not an ISO 8601 date-time")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(_iso_8601)]


def record_filter(
    subject: Annotated[str | None, Query(description="asset id, task id, s3:// URI...")] = None,
    actor: Annotated[
        str | None, Query(description="API key name, service or 'objectstore'")
    ] = None,
    type: Annotated[str | None, Query(examples=["conveyor.asset.ingested.v1"])] = None,
    since: Annotated[IsoDateTime | None, Query(description="event time ≥ (ISO 8601)")] = None,
    until: Annotated[IsoDateTime | None, Query(description="event time < (ISO 8601)")] = None,
) -> RecordFilter:
    """Query-string filters shared by search and export."""
    return RecordFilter(subject=subject, actor=actor, type=type, since=since, until=until)


Filter = Annotated[RecordFilter, Depends(record_filter)]


def visible(flt: RecordFilter, principal: Principal) -> RecordFilter:
    """``flt`` narrowed to the records of the datasets the caller may see."""
    return dataclasses.replace(flt, datasets=principal.datasets)


@router.get(
    "/v1/audit/records",
    summary="Search records (chain order)",
    responses=error_responses(400, 401, 403, 422),
)
async def search_records(
    flt: Filter,
    principal: Viewer,
    audit: AuditDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> RecordPage:
    return await queries.find_records(audit, visible(flt, principal), limit, cursor)


@router.get(
    "/v1/audit/assets/{asset_id}/timeline",
    summary="An asset's history, oldest first",
    responses=error_responses(401, 403, 422),
)
async def asset_timeline(asset_id: uuid.UUID, principal: Viewer, audit: AuditDep) -> Timeline:
    items = await queries.asset_timeline(audit, str(asset_id), principal.datasets)
    return Timeline(asset_id=str(asset_id), items=items)


@router.post(
    "/v1/audit/verify",
    summary="Recompute the hash chain and name the first broken record",
    responses=error_responses(401, 403),
)
async def verify_chain(principal: Viewer, audit: AuditDep) -> VerifyResult:
    if principal.scoped:
        # the chain spans every dataset; its breaks name records a limited key may not see
        raise ApiError(403, "forbidden", "verifying the whole chain needs a key for all datasets")
    return await verification.verify_log(audit)


@router.get(
    "/v1/audit/export",
    summary="Export matching records as JSON lines",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}, **error_responses(401, 403, 422)},
)
async def export_records(flt: Filter, principal: Viewer, audit: AuditDep) -> StreamingResponse:
    records = queries.export_records(audit, visible(flt, principal))
    return StreamingResponse(records, media_type="application/x-ndjson")
