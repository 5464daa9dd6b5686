"""The ingest service's FastAPI app and lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.ingest.api import router
from services.ingest.consumer import build_consumer
from services.ingest.context import SOURCE, Ingest
from services.ingest.models import SCHEMA, inbox, outbox
from services.ingest.settings import IngestSettings
from services.ingest.use_cases import drops
from services.ingest.use_cases.principals import StoredKeys
from shared.db import ping
from shared.http import create_app
from shared.runtime import service_runtime
from shared.telemetry import setup_logging, setup_tracing
from shared.uow import UnitsOfWork

MIGRATIONS = Path(__file__).parent / "migrations"


def create_ingest_app(settings: IngestSettings | None = None) -> FastAPI:
    """Build the app; connections are made when it starts, not here."""
    settings = settings or IngestSettings()
    setup_logging(settings.service_name, settings.log_level)
    setup_tracing(settings.service_name, settings.trace_file)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service_runtime(settings, schema=SCHEMA, migrations_dir=MIGRATIONS) as rt:
            units = UnitsOfWork(
                rt.sessions,
                outbox=outbox,
                inbox=inbox,
                source=SOURCE,
                consumer=settings.consumer_group,
            )
            ingest = Ingest(settings, units, rt.store)
            app.state.settings = settings
            app.state.ingest = ingest
            app.state.principal_resolver = StoredKeys(ingest)
            app.state.readiness.update(
                postgres=lambda: ping(rt.engine), kafka=rt.check_kafka, objectstore=rt.store.ping
            )
            rt.start_outbox_relay(outbox)
            rt.spawn("objectstore-consumer", build_consumer(ingest, rt.producer).run)
            rt.spawn("landing-reconcile-on-request", lambda: drops.reconcile_when_requested(ingest))
            if settings.reconcile_landing_on_start:
                drops.request_reconcile(ingest)
            yield

    app = create_app(
        service="ingest",
        title="Conveyor ingest",
        description=(
            "Datasets, uploads and assets. Authenticate with the `X-API-Key` header. "
            'Errors are `{"error": {"code", "message", "details"}}`.'
        ),
        lifespan=lifespan,
        max_body_bytes=settings.max_request_bytes,
    )
    app.include_router(router)
    return app
