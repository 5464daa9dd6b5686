"""The audit service's FastAPI app and lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.audit.api import router
from services.audit.consumer import build_consumer
from services.audit.context import SOURCE, Audit
from services.audit.models import SCHEMA
from services.audit.settings import AuditSettings
from shared.auth import RemotePrincipalResolver, RevocationListener
from shared.db import ping
from shared.http import create_app
from shared.runtime import service_runtime
from shared.telemetry import setup_logging, setup_tracing
from shared.uow import UnitsOfWork

MIGRATIONS = Path(__file__).parent / "migrations"


def create_audit_app(settings: AuditSettings | None = None) -> FastAPI:
    """Build the app; connections are made when it starts, not here."""
    settings = settings or AuditSettings()
    setup_logging(settings.service_name, settings.log_level)
    setup_tracing(settings.service_name, settings.trace_file)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service_runtime(settings, schema=SCHEMA, migrations_dir=MIGRATIONS) as rt:
            # Audit emits nothing and recognises redeliveries by event id in the log itself.
            units = UnitsOfWork(
                rt.sessions,
                outbox=None,
                inbox=None,
                source=SOURCE,
                consumer=settings.consumer_group,
            )
            audit = Audit(units)
            resolver = RemotePrincipalResolver(settings.ingest_url)
            app.state.settings = settings
            app.state.audit = audit
            app.state.principal_resolver = resolver
            app.state.readiness.update(postgres=lambda: ping(rt.engine), kafka=rt.check_kafka)
            rt.spawn("audit-consumer", build_consumer(audit, settings, rt.producer).run)
            revocations = RevocationListener(resolver, settings.kafka_bootstrap_servers)
            rt.spawn("api-key-revocations", revocations.run)
            try:
                yield
            finally:
                await resolver.close()

    app = create_app(
        service="audit",
        title="Conveyor audit",
        description=(
            "The tamper-evident record of every event. Authenticate with the `X-API-Key` "
            "header (keys are issued by the ingest service)."
        ),
        lifespan=lifespan,
    )
    app.include_router(router)
    return app
