"""The dashboard service's FastAPI app and lifespan: the projections' consumer, the JSON API
and the web page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from services.dashboard.api import router
from services.dashboard.consumer import build_consumer
from services.dashboard.context import SOURCE, Dashboard
from services.dashboard.models import SCHEMA, inbox
from services.dashboard.settings import DashboardSettings
from shared.auth import RemotePrincipalResolver, RevocationListener
from shared.db import ping
from shared.http import create_app
from shared.runtime import service_runtime
from shared.telemetry import setup_logging, setup_tracing
from shared.uow import UnitsOfWork

MIGRATIONS = Path(__file__).parent / "migrations"
STATIC = Path(__file__).parent / "static"


def create_dashboard_app(settings: DashboardSettings | None = None) -> FastAPI:
    """Build the app; connections are made when it starts, not here."""
    settings = settings or DashboardSettings()
    setup_logging(settings.service_name, settings.log_level)
    setup_tracing(settings.service_name, settings.trace_file)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            service_runtime(settings, schema=SCHEMA, migrations_dir=MIGRATIONS) as rt,
            httpx.AsyncClient(timeout=settings.upstream_timeout_seconds) as http,
        ):
            # The dashboard emits nothing: no outbox, only the inbox of its projections.
            units = UnitsOfWork(
                rt.sessions,
                outbox=None,
                inbox=inbox,
                source=SOURCE,
                consumer=settings.consumer_group,
            )
            dashboard = Dashboard(settings, units, rt.store, http)
            resolver = RemotePrincipalResolver(settings.ingest_url)
            app.state.settings = settings
            app.state.dashboard = dashboard
            app.state.principal_resolver = resolver
            app.state.readiness.update(postgres=lambda: ping(rt.engine), kafka=rt.check_kafka)
            rt.spawn("dashboard-consumer", build_consumer(dashboard, rt.producer).run)
            revocations = RevocationListener(resolver, settings.kafka_bootstrap_servers)
            rt.spawn("api-key-revocations", revocations.run)
            try:
                yield
            finally:
                await resolver.close()

    app = create_app(
        service="dashboard",
        title="Conveyor dashboard",
        description=(
            "The ops dashboard's JSON API: the pipeline funnel, throughput and latency, backlog, "
            "cleaning, vendors, assets and health, read from projections of every event. The web "
            "page is at `/`. Authenticate with the `X-API-Key` header (a viewer key is enough)."
        ),
        lifespan=lifespan,
    )
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    return app
