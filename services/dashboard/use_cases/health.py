"""The health page: each service's /healthz and /readyz, the servers (Kafka, Postgres, the S3
store) and the trace viewer, all checked side by side with short timeouts so the page stays
fast when something is down."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import urlsplit

import httpx
from aiokafka import AIOKafkaClient
from aiokafka.protocol.admin import ApiVersionRequest
from sqlalchemy import text

from services.dashboard.context import Dashboard
from services.dashboard.settings import DashboardSettings
from shared import endpoints

# One check's bound: a hung dependency costs the page this much, no more.
UPSTREAM_TIMEOUT = 2.0
# Kafka API keys whose highest version the page shows (the broker does not tell its release).
_PRODUCE, _FETCH = 0, 1


def describe(exc: BaseException) -> str:
    """A short reason for a failed check."""
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return f"no answer within {UPSTREAM_TIMEOUT:g} s"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def service_urls(settings: DashboardSettings) -> dict[str, str]:
    """Every Conveyor service's base URL, the dashboard's own included."""
    return {
        "ingest": settings.ingest_url,
        "clean": settings.clean_url,
        "labeling": settings.labeling_url,
        "qc": settings.qc_url,
        "audit": settings.audit_url,
        "dashboard": endpoints.service_url(settings.port),
    }


def trace_viewer_url(template: str) -> str:
    """The trace viewer's home page, from the template of its trace links."""
    parts = urlsplit(template)
    return f"{parts.scheme}://{parts.netloc}/"


async def service_health(http: httpx.AsyncClient, name: str, url: str) -> dict[str, Any]:
    """A service's liveness (with its version) and readiness (with each check)."""
    row: dict[str, Any] = {
        "name": name,
        "url": url,
        "up": False,
        "ready": False,
        "checks": {},
        "version": None,
        "error": None,
    }
    alive, ready = await asyncio.gather(
        http.get(f"{url}/healthz", timeout=UPSTREAM_TIMEOUT),
        http.get(f"{url}/readyz", timeout=UPSTREAM_TIMEOUT),
        return_exceptions=True,
    )
    if isinstance(alive, BaseException):
        row["error"] = describe(alive)
    elif alive.status_code != 200:
        row["error"] = f"/healthz answered {alive.status_code}"
    else:
        row["up"] = True
        row["version"] = alive.json().get("version")
    if isinstance(ready, httpx.Response) and ready.status_code in (200, 503):
        body = ready.json()
        row["ready"] = body.get("status") == "ready"
        row["checks"] = body.get("checks", {})
    return row


async def kafka_health(bootstrap_servers: str) -> dict[str, Any]:
    """Kafka answers metadata and ApiVersions. Its release is not on the wire: the version
    reported is the highest Produce and Fetch protocol versions the broker speaks."""
    row: dict[str, Any] = {"name": "kafka", "up": False, "version": None, "error": None}
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(UPSTREAM_TIMEOUT * 1000)
    )
    try:
        async with asyncio.timeout(UPSTREAM_TIMEOUT):
            await client.bootstrap()
            answer = await client.send(client.get_random_node(), ApiVersionRequest())
        highest = {key: high for key, _, high in answer.api_versions}
        brokers = len(client.cluster.brokers())
        row["up"] = True
        row["version"] = (
            f"protocol Produce v{highest.get(_PRODUCE)}, Fetch v{highest.get(_FETCH)}; "
            f"{brokers} broker{'s' if brokers != 1 else ''}"
        )
    except Exception as exc:
        row["error"] = describe(exc)
    finally:
        with contextlib.suppress(Exception):
            await client.close()
    return row


async def postgres_health(dashboard: Dashboard) -> dict[str, Any]:
    """Postgres answers ``SELECT version()``."""
    row: dict[str, Any] = {"name": "postgres", "up": False, "version": None, "error": None}
    try:
        async with asyncio.timeout(UPSTREAM_TIMEOUT), dashboard.units.read() as session:
            full = str(await session.scalar(text("SELECT version()")))
        row["up"] = True
        row["version"] = full.split(" on ", 1)[0]  # "PostgreSQL 16.x", without the build
    except Exception as exc:
        row["error"] = describe(exc)
    return row


async def s3_health(dashboard: Dashboard) -> dict[str, Any]:
    """The S3 store answers an authenticated bucket-exists call; its version is what its
    ``Server`` header says (SeaweedFS: "SeaweedFS <size> <release>")."""
    row: dict[str, Any] = {"name": "s3", "up": False, "version": None, "error": None}
    settings = dashboard.settings
    scheme = "https" if settings.s3_secure else "http"
    try:
        async with asyncio.timeout(UPSTREAM_TIMEOUT):
            await dashboard.store.ping()
        row["up"] = True
    except Exception as exc:
        row["error"] = describe(exc)
    with contextlib.suppress(Exception):
        # An anonymous request is refused, but the refusal carries the header.
        answer = await dashboard.http.get(
            f"{scheme}://{settings.s3_endpoint}/", timeout=UPSTREAM_TIMEOUT
        )
        row["version"] = answer.headers.get("server")
    return row


async def trace_viewer_health(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """The trace viewer's page answers."""
    row: dict[str, Any] = {"url": url, "up": False, "error": None}
    try:
        answer = await http.get(url, timeout=UPSTREAM_TIMEOUT)
        row["up"] = answer.status_code < 500
        if not row["up"]:
            row["error"] = f"answered {answer.status_code}"
    except Exception as exc:
        row["error"] = describe(exc)
    return row


async def health(dashboard: Dashboard) -> dict[str, Any]:
    """Every service and server, checked concurrently."""
    settings = dashboard.settings
    urls = service_urls(settings)
    services, servers, viewer = await asyncio.gather(
        asyncio.gather(*(service_health(dashboard.http, n, u) for n, u in urls.items())),
        asyncio.gather(
            kafka_health(settings.kafka_bootstrap_servers),
            postgres_health(dashboard),
            s3_health(dashboard),
        ),
        trace_viewer_health(dashboard.http, trace_viewer_url(settings.trace_url_template)),
    )
    return {"services": list(services), "servers": list(servers), "trace_viewer": viewer}
