"""The backlog page's API: consumer lag, outbox rows waiting, dead letters, tasks out and
queued."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.dashboard.api.backlog_schemas import Backlog
from services.dashboard.api.dependencies import DashboardDep, Viewer
from services.dashboard.use_cases import backlog
from shared.errors import error_responses

router = APIRouter(prefix="/v1", tags=["backlog"], responses=error_responses(401, 403))


@router.get(
    "/backlog",
    summary="Consumer lag per group and topic, outbox rows waiting, dead letters, tasks out",
    description=(
        "Lag is read from Kafka (committed vs end offsets of the `conveyor-*` groups); outbox "
        "rows waiting from each service's /metrics. Kafka or a service being down is told in "
        "`lag_error` or the service's `error`, never as a failed request."
    ),
)
async def get_backlog(
    dashboard: DashboardDep,
    principal: Viewer,
    dead_letters_limit: Annotated[int, Query(ge=0, le=500)] = 20,
) -> Backlog:
    return Backlog.model_validate(await backlog.backlog(dashboard, principal, dead_letters_limit))
