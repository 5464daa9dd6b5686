"""Fixtures for the tiers that need the real stack (integration, e2e).

Unit tests use none of these. The stack (Kafka, SeaweedFS, Postgres) is started by
``make test`` (or here, if it is not up). Each session gets a fresh database, freshly
created topics, fresh consumer groups and an empty landing bucket, then its own ingest
and audit processes writing their spans to files the tests read.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.sandbox import KAFKA, PG_SUPERUSER_DSN, delete_topics, minio_client, reset
from deploy.services import ServiceProcess, stop_running
from shared import endpoints

__all__ = ["KAFKA", "PG_SUPERUSER_DSN", "minio_client"]

ROOT = Path(__file__).resolve().parent.parent
ADMIN_KEY = "cvk_test_bootstrap_admin"
TEST_DB = "conveyor_test"
STACK_SESSION_LOCK = "/tmp/conveyor-stack-session.lock"


@pytest.fixture(scope="session")
def stack() -> Iterator[None]:
    """The local stack, started if it is not running.

    A session resets the shared test database and runs services on fixed ports, so two test
    sessions on one machine take turns: the lock is held until this session ends.
    """
    with open(STACK_SESSION_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        script = ROOT / "deploy" / "stack" / "stack.py"
        status = subprocess.run([sys.executable, script, "status"], capture_output=True)
        if status.returncode != 0:
            subprocess.run([sys.executable, script, "up"], check=True)
        yield


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder for this session's service logs and span files."""
    return tmp_path_factory.mktemp("conveyor")


@pytest.fixture(scope="session")
def service_env(stack: None, run_dir: Path) -> dict[str, str]:
    """Environment of this session's services, after resetting the shared stack."""
    reset(TEST_DB)
    run_id = uuid.uuid4().hex[:8]
    return {
        "CONVEYOR_DATABASE_URL": endpoints.postgres_url(TEST_DB, driver="asyncpg"),
        "CONVEYOR_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "CONVEYOR_INGEST_CONSUMER_GROUP": f"conveyor-ingest-{run_id}",
        "CONVEYOR_AUDIT_CONSUMER_GROUP": f"conveyor-audit-{run_id}",
        "CONVEYOR_CLEAN_CONSUMER_GROUP": f"conveyor-clean-{run_id}",
        "CONVEYOR_LABELING_CONSUMER_GROUP": f"conveyor-labeling-dispatch-{run_id}",
        "CONVEYOR_QC_CONSUMER_GROUP": f"conveyor-qc-{run_id}",
        "CONVEYOR_QC_TRACE_FILE": str(run_dir / "qc-spans.jsonl"),
        "CONVEYOR_DASHBOARD_CONSUMER_GROUP": f"conveyor-dashboard-{run_id}",
        "CONVEYOR_DASHBOARD_TRACE_FILE": str(run_dir / "dashboard-spans.jsonl"),
        "CONVEYOR_LABELING_TRACE_FILE": str(run_dir / "labeling-spans.jsonl"),
        # Vendor deliveries are retried on a schedule of seconds, not of a day.
        "CONVEYOR_LABELING_FIRST_RETRY_SECONDS": "0.2",
        "CONVEYOR_LABELING_MAX_RETRY_DELAY_SECONDS": "1",
        "CONVEYOR_LABELING_RETRY_HORIZON_SECONDS": "4",
        "CONVEYOR_LABELING_DELIVERY_TIMEOUT_SECONDS": "2",
        # Label Studio projects are reconciled every second, not every half minute.
        "CONVEYOR_LABELING_LABEL_STUDIO_SYNC_INTERVAL_SECONDS": "1",
        # Registering a Label Studio vendor calls its server: tests stay on this machine.
        "CONVEYOR_LABELING_LABEL_STUDIO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CONVEYOR_CLEAN_TRACE_FILE": str(run_dir / "clean-spans.jsonl"),
        "CONVEYOR_INGEST_MAX_UPLOAD_BYTES": str(8 * 1024 * 1024),
        "CONVEYOR_INGEST_MAX_REQUEST_BYTES": str(20 * 1024 * 1024),
        "CONVEYOR_INGEST_TRACE_FILE": str(run_dir / "ingest-spans.jsonl"),
        "CONVEYOR_AUDIT_TRACE_FILE": str(run_dir / "audit-spans.jsonl"),
        "CONVEYOR_LOG_LEVEL": "INFO",
    }


@pytest.fixture(scope="session")
def services(service_env: dict[str, str], run_dir: Path) -> Iterator[dict[str, ServiceProcess]]:
    """Running ingest, clean, labeling-dispatch and audit processes for the whole session.

    At the end the session's topics are deleted: services started later (``make run``) share
    this Kafka, and must not replay the tests' events into their own database.
    """
    procs = {
        name: ServiceProcess(name, env=service_env, log_dir=run_dir, run_dir=run_dir)
        for name in ("ingest", "clean", "labeling", "qc", "audit", "dashboard")
    }
    stop_running(tuple(procs))
    for proc in procs.values():
        proc.start()
    yield procs
    for proc in procs.values():
        proc.stop()
    asyncio.run(delete_topics())


@pytest.fixture(scope="session")
def ingest_url(services: dict[str, ServiceProcess]) -> str:
    return services["ingest"].url


@pytest.fixture(scope="session")
def clean_url(services: dict[str, ServiceProcess]) -> str:
    return services["clean"].url


@pytest.fixture(scope="session")
def labeling_url(services: dict[str, ServiceProcess]) -> str:
    return services["labeling"].url


@pytest.fixture(scope="session")
def qc_url(services: dict[str, ServiceProcess]) -> str:
    return services["qc"].url


@pytest.fixture(scope="session")
def audit_url(services: dict[str, ServiceProcess]) -> str:
    return services["audit"].url


@pytest.fixture(scope="session")
def dashboard_url(services: dict[str, ServiceProcess]) -> str:
    return services["dashboard"].url


@pytest.fixture(scope="session")
def admin(ingest_url: str) -> Iterator[httpx.Client]:
    """An HTTP client of ingest with the bootstrap admin key."""
    with httpx.Client(base_url=ingest_url, headers={"X-API-Key": ADMIN_KEY}, timeout=30) as c:
        yield c


@pytest.fixture(scope="session")
def uploader_key(admin: httpx.Client) -> str:
    response = admin.post("/v1/api-keys", json={"name": "test-uploader", "role": "uploader"})
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


@pytest.fixture(scope="session")
def viewer_key(admin: httpx.Client) -> str:
    response = admin.post("/v1/api-keys", json={"name": "test-viewer", "role": "viewer"})
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


@pytest.fixture(scope="session")
def uploader(ingest_url: str, uploader_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ingest_url, headers={"X-API-Key": uploader_key}, timeout=60) as c:
        yield c


@pytest.fixture(scope="session")
def auditor(audit_url: str, viewer_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=audit_url, headers={"X-API-Key": viewer_key}, timeout=60) as c:
        yield c


@pytest.fixture
def dataset(uploader: httpx.Client) -> str:
    """A new dataset's slug."""
    slug = f"ds-{uuid.uuid4().hex[:10]}"
    response = uploader.post("/v1/datasets", json={"slug": slug, "name": f"Test {slug}"})
    assert response.status_code == 201, response.text
    return slug


def read_spans(path: Path) -> list[dict[str, Any]]:
    """Spans a service exported to its JSON-lines trace file so far."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
# Tests read the services' span files; an OTLP exporter set in the caller's shell stays out.
os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
