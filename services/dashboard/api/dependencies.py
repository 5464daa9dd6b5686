"""What the dashboard's routes take: the service context, the caller, the page filter."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from services.dashboard.context import Dashboard
from services.dashboard.use_cases.filters import Filter, resolve
from shared.auth import Principal, Role, require
from shared.http import IsoDateTime


def get_dashboard(request: Request) -> Dashboard:
    """The use cases' context, built in the lifespan."""
    dashboard: Dashboard = request.app.state.dashboard
    return dashboard


DashboardDep = Annotated[Dashboard, Depends(get_dashboard)]
Viewer = Annotated[Principal, require(Role.viewer)]
Admin = Annotated[Principal, require(Role.admin)]


async def page_filter(
    dashboard: DashboardDep,
    principal: Viewer,
    dataset: Annotated[
        str | None, Query(description="a dataset's slug; every visible dataset when absent")
    ] = None,
    since: Annotated[
        IsoDateTime | None, Query(description="window start, ISO 8601 (UTC when no zone)")
    ] = None,
    until: Annotated[
        IsoDateTime | None, Query(description="window end (exclusive), ISO 8601")
    ] = None,
) -> Filter:
    """The dataset and time window a page asked for."""
    return await resolve(dashboard, principal, dataset, since, until)


PageFilter = Annotated[Filter, Depends(page_filter)]


def caller_key(request: Request) -> str:
    """The caller's own API key, for the other services the dashboard asks for detail (their
    scopes then hold); the Viewer dependency has checked it already."""
    return request.headers.get("X-API-Key", "")


CallerKey = Annotated[str, Depends(caller_key)]
