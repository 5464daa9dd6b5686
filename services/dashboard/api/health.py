"""The health page's API: services and servers up, ready, with versions."""

from __future__ import annotations

from fastapi import APIRouter

from services.dashboard.api.backlog_schemas import Health
from services.dashboard.api.dependencies import DashboardDep, Viewer
from services.dashboard.use_cases import health
from shared.errors import error_responses

router = APIRouter(prefix="/v1", tags=["health"], responses=error_responses(401, 403))


@router.get(
    "/health",
    summary="Each service (/healthz, /readyz) and server (Kafka, Postgres, S3) up, with versions",
)
async def get_health(dashboard: DashboardDep, _: Viewer) -> Health:
    return Health.model_validate(await health.health(dashboard))
