"""Funnel, throughput, latency, datasets, asset search and the change counter."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.dashboard.api.dependencies import DashboardDep, PageFilter, Viewer
from services.dashboard.api.schemas import (
    AssetSearch,
    Changes,
    DatasetList,
    Funnel,
    Latency,
    Throughput,
)
from services.dashboard.use_cases import overview
from shared.errors import error_responses

# a page filter's refusals: a window ending before it starts (400), an unknown dataset (404)
WINDOW_ERRORS = error_responses(400, 404)

router = APIRouter(prefix="/v1", tags=["overview"], responses=error_responses(401, 403))


@router.get("/datasets", summary="Datasets the key may see, with asset counts")
async def list_datasets(dashboard: DashboardDep, principal: Viewer) -> DatasetList:
    return DatasetList.model_validate({"items": await overview.datasets(dashboard, principal)})


@router.get(
    "/funnel",
    summary="Pipeline funnel: assets per stage, what was lost where and why",
    responses=WINDOW_ERRORS,
)
async def funnel(dashboard: DashboardDep, chosen: PageFilter) -> Funnel:
    return Funnel.model_validate(await overview.funnel(dashboard, chosen))


@router.get("/throughput", summary="Events per stage per time bucket", responses=WINDOW_ERRORS)
async def throughput(dashboard: DashboardDep, chosen: PageFilter) -> Throughput:
    return Throughput.model_validate(await overview.throughput(dashboard, chosen))


@router.get(
    "/latency",
    summary="p50/p95 of upload→cleaned and cleaned→dispatched per bucket",
    responses=WINDOW_ERRORS,
)
async def latency(dashboard: DashboardDep, chosen: PageFilter) -> Latency:
    return Latency.model_validate(await overview.latency(dashboard, chosen))


@router.get("/assets/search", summary="Find assets by id, file name or sha256 (prefix of 6+)")
async def search_assets(
    dashboard: DashboardDep,
    principal: Viewer,
    q: Annotated[str, Query(min_length=1, max_length=200, description="id, file name or sha256")],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> AssetSearch:
    items: list[Any] = await overview.search(dashboard, principal, q, limit)
    return AssetSearch.model_validate({"items": items})


@router.get("/changes", summary="How many events the projections applied (poll to refresh)")
async def changes(dashboard: DashboardDep, _: Viewer) -> Changes:
    return Changes.model_validate(await overview.changes(dashboard))
