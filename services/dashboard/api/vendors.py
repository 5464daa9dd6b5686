"""The vendors page's API: vendors with QC's scorecards and trends."""

from __future__ import annotations

from fastapi import APIRouter

from services.dashboard.api.backlog_schemas import Vendors
from services.dashboard.api.dependencies import CallerKey, DashboardDep, PageFilter
from services.dashboard.use_cases import vendors
from shared.errors import error_responses

router = APIRouter(prefix="/v1", tags=["vendors"], responses=error_responses(401, 403))


@router.get(
    "/vendors",
    summary="Vendors with QC's scorecard over the window and its trend by day",
    description=(
        "QC's figures are read with the caller's key. QC counts per vendor, not per dataset: "
        "`dataset` narrows the list to vendors that worked on it. QC down: 200 with `error`."
    ),
    responses=error_responses(404),
)
async def list_vendors(
    dashboard: DashboardDep,
    chosen: PageFilter,
    api_key: CallerKey,
) -> Vendors:
    return Vendors.model_validate(await vendors.vendors(dashboard, chosen, api_key))
