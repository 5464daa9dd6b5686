"""The labeling-dispatch service's FastAPI app and lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI

from services.labeling_dispatch.api import router
from services.labeling_dispatch.consumer import build_consumer
from services.labeling_dispatch.context import SOURCE, Labeling
from services.labeling_dispatch.models import SCHEMA, inbox, outbox
from services.labeling_dispatch.settings import LabelingSettings
from services.labeling_dispatch.use_cases.dispatching import run_dispatcher
from services.labeling_dispatch.use_cases.label_studio import run_label_studio_sync
from services.labeling_dispatch.use_cases.submissions import AnswerBatcher
from shared.auth import RemotePrincipalResolver, RevocationListener
from shared.db import ping
from shared.http import create_app
from shared.runtime import service_runtime
from shared.telemetry import setup_logging, setup_tracing
from shared.uow import UnitsOfWork

MIGRATIONS = Path(__file__).parent / "migrations"


def create_labeling_app(settings: LabelingSettings | None = None) -> FastAPI:
    """Build the app; connections are made when it starts, not here."""
    settings = settings or LabelingSettings()
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
            # Vendors are outside: their answers are bounded in time, never followed blindly.
            vendor_http = httpx.AsyncClient(
                timeout=settings.delivery_timeout_seconds, follow_redirects=False
            )
            labeling = Labeling(settings, units, rt.store, vendor_http)
            resolver = RemotePrincipalResolver(settings.ingest_url)
            app.state.settings = settings
            app.state.labeling = labeling
            app.state.principal_resolver = resolver
            app.state.readiness.update(
                postgres=lambda: ping(rt.engine), kafka=rt.check_kafka, objectstore=rt.store.ping
            )
            rt.start_outbox_relay(outbox)
            rt.spawn("labeling-consumer", build_consumer(labeling, rt.producer).run)
            rt.spawn("dispatcher", lambda: run_dispatcher(labeling))
            rt.spawn("label-studio-sync", lambda: run_label_studio_sync(labeling))
            revocations = RevocationListener(resolver, settings.kafka_bootstrap_servers)
            rt.spawn("api-key-revocations", revocations.run)
            labeling.answers = AnswerBatcher(labeling)
            labeling.answers.start()
            try:
                yield
            finally:
                await labeling.answers.stop()
                await resolver.close()
                await vendor_http.aclose()

    app = create_app(
        service="labeling-dispatch",
        title="Conveyor labeling dispatch",
        description=(
            "Ontologies, vendors, labeling jobs and tasks; task batches out to vendors over "
            "signed webhooks and annotations back in. People authenticate with the `X-API-Key` "
            "header (keys are issued by the ingest service); vendors with their own "
            "`X-Vendor-Key` and, on webhooks, a `Conveyor-Signature`."
        ),
        lifespan=lifespan,
        # Above the webhook's own limit, so its 413s are recorded as refusals by the route.
        max_body_bytes=2 * settings.webhook_max_body_bytes,
    )
    app.include_router(router)
    return app
