"""The cleaning page's API: reasons over time, the rejected grid, histograms, duplicates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.dashboard.api.cleaning_schemas import Duplicates, Histograms, Reasons, RejectedPage
from services.dashboard.api.dependencies import CallerKey, DashboardDep, PageFilter, Viewer
from services.dashboard.use_cases import cleaning
from services.dashboard.use_cases.filters import resolve
from shared.errors import error_responses

router = APIRouter(prefix="/v1", tags=["cleaning"], responses=error_responses(401, 403))


@router.get(
    "/cleaning/reasons",
    summary="Rejections (blocking reasons) and flags by code over time (by verdict time)",
    responses=error_responses(400, 404, 422),
)
async def reasons(dashboard: DashboardDep, chosen: PageFilter) -> Reasons:
    return Reasons.model_validate(await cleaning.reasons(dashboard, chosen))


@router.get(
    "/cleaning/rejected",
    summary="Rejected assets with their reasons, newest verdict first (paged)",
    responses=error_responses(400, 404, 422),
)
async def rejected(
    dashboard: DashboardDep,
    chosen: PageFilter,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=500, description="next_cursor of the previous page")
    ] = None,
) -> RejectedPage:
    return RejectedPage.model_validate(await cleaning.rejected(dashboard, chosen, limit, cursor))


@router.get(
    "/cleaning/histograms",
    summary="Histograms of the quality metrics of assets judged in the window",
    responses=error_responses(400, 404, 422),
)
async def histograms(
    dashboard: DashboardDep,
    chosen: PageFilter,
    bins: Annotated[int, Query(ge=5, le=100)] = 30,
    metric: Annotated[
        str | None, Query(min_length=1, max_length=100, description="only this metric")
    ] = None,
) -> Histograms:
    return Histograms.model_validate(await cleaning.histograms(dashboard, chosen, bins, metric))


@router.get(
    "/cleaning/duplicates",
    summary="A dataset's duplicate groups (clean's), with file names and thumbnails",
    description="When clean does not answer the groups are empty and `error` says why.",
    responses=error_responses(404, 422),
)
async def duplicates(
    dashboard: DashboardDep,
    principal: Viewer,
    api_key: CallerKey,
    dataset: Annotated[str, Query(min_length=1, max_length=63, description="a dataset's slug")],
) -> Duplicates:
    chosen = await resolve(dashboard, principal, dataset, None, None)
    return Duplicates.model_validate(await cleaning.duplicates(dashboard, chosen, api_key))
