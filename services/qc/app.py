"""The qc service's FastAPI app and lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.qc.api import router
from services.qc.consumer import build_consumer
from services.qc.context import SOURCE, Qc
from services.qc.loops import background_loops
from services.qc.models import SCHEMA, inbox, outbox
from services.qc.settings import QcSettings
from shared.auth import RemotePrincipalResolver, RevocationListener
from shared.db import ping
from shared.http import create_app
from shared.runtime import service_runtime
from shared.telemetry import setup_logging, setup_tracing
from shared.uow import UnitsOfWork

MIGRATIONS = Path(__file__).parent / "migrations"


def create_qc_app(settings: QcSettings | None = None) -> FastAPI:
    """Build the app; connections are made when it starts, not here."""
    settings = settings or QcSettings()
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
            qc = Qc(settings, units, rt.store)
            resolver = RemotePrincipalResolver(settings.ingest_url)
            app.state.settings = settings
            app.state.qc = qc
            app.state.principal_resolver = resolver
            app.state.readiness.update(
                postgres=lambda: ping(rt.engine), kafka=rt.check_kafka, objectstore=rt.store.ping
            )
            rt.start_outbox_relay(outbox)
            rt.spawn("qc-consumer", build_consumer(qc, rt.producer).run)
            for name, loop in background_loops(qc):
                rt.spawn(name, loop)
            revocations = RevocationListener(resolver, settings.kafka_bootstrap_servers)
            rt.spawn("api-key-revocations", revocations.run)
            try:
                yield
            finally:
                await resolver.close()

    app = create_app(
        service="qc",
        title="Conveyor QC",
        description=(
            "Quality control of labels: structural checks, consensus between annotators, gold "
            "tasks, the review queue and rework, vendor scorecards, frozen dataset versions and "
            "their COCO / YOLO exports. People authenticate with the `X-API-Key` header (keys "
            "are issued by the ingest service)."
        ),
        lifespan=lifespan,
    )
    app.include_router(router)
    return app
