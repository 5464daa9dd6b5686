"""Audit's HTTP routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from services.audit.context import Audit
from services.audit.repository import RecordFilter
from services.audit.schemas import RecordPage, Timeline, VerifyResult
from services.audit.use_cases import queries, verification
from shared.auth import Principal, Role, require
from shared.errors import error_responses

router = APIRouter(tags=["audit"])


def get_audit(request: Request) -> Audit:
    """The use cases' dependencies, built in the lifespan."""
    audit: Audit = request.app.state.audit
    return audit


AuditDep = Annotated[Audit, Depends(get_audit)]
Viewer = Annotated[Principal, require(Role.viewer)]


def record_filter(
    subject: Annotated[str | None, Query(description="asset id, task id, s3:// URI...")] = None,
    actor: Annotated[
        str | None, Query(description="API key name, service or 'objectstore'")
    ] = None,
    type: Annotated[str | None, Query(examples=["conveyor.asset.ingested.v1"])] = None,
    since: Annotated[datetime | None, Query(description="event time ≥ (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="event time < (ISO 8601)")] = None,
) -> RecordFilter:
    """Query-string filters shared by search and export."""
    return RecordFilter(subject=subject, actor=actor, type=type, since=since, until=until)


Filter = Annotated[RecordFilter, Depends(record_filter)]


@router.get(
    "/v1/audit/records",
    summary="Search records (chain order)",
    responses=error_responses(400, 401, 403, 422),
)
async def search_records(
    flt: Filter,
    _: Viewer,
    audit: AuditDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> RecordPage:
    return await queries.find_records(audit, flt, limit, cursor)


@router.get(
    "/v1/audit/assets/{asset_id}/timeline",
    summary="An asset's history, oldest first",
    responses=error_responses(401, 403, 422),
)
async def asset_timeline(asset_id: uuid.UUID, _: Viewer, audit: AuditDep) -> Timeline:
    return Timeline(
        asset_id=str(asset_id), items=await queries.asset_timeline(audit, str(asset_id))
    )


@router.post(
    "/v1/audit/verify",
    summary="Recompute the hash chain and name the first broken record",
    responses=error_responses(401, 403),
)
async def verify_chain(_: Viewer, audit: AuditDep) -> VerifyResult:
    return await verification.verify_log(audit)


@router.get(
    "/v1/audit/export",
    summary="Export matching records as JSON lines",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}, **error_responses(401, 403, 422)},
)
async def export_records(flt: Filter, _: Viewer, audit: AuditDep) -> StreamingResponse:
    return StreamingResponse(queries.export_records(audit, flt), media_type="application/x-ndjson")
