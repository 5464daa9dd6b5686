"""shared/endpoints.py: the URLs it builds, and the docs that print its ports."""

from __future__ import annotations

import re
from pathlib import Path

from shared import endpoints

REPO = Path(__file__).resolve().parents[2]


def test_postgres_url_builds_the_plain_and_the_sqlalchemy_form() -> None:
    assert endpoints.postgres_url() == "postgresql://conveyor:conveyor@127.0.0.1:55432/conveyor"
    assert endpoints.postgres_url("conveyor_test", driver="asyncpg") == (
        "postgresql+asyncpg://conveyor:conveyor@127.0.0.1:55432/conveyor_test"
    )
    superuser = endpoints.postgres_url(
        "postgres", user=endpoints.SUPERUSER, password=endpoints.SUPERUSER_PASSWORD, port=55532
    )
    assert superuser == "postgresql://postgres:postgres@127.0.0.1:55532/postgres"


def test_service_urls_are_http_on_the_loopback_host() -> None:
    assert endpoints.INGEST_URL == "http://127.0.0.1:8001"
    assert endpoints.service_url(endpoints.AUDIT_PORT) == endpoints.AUDIT_URL
    assert f"http://{endpoints.S3_ENDPOINT}" == endpoints.S3_URL


def test_every_local_port_is_distinct() -> None:
    ports = [
        value
        for name, value in vars(endpoints).items()
        if name.endswith("_PORT") and isinstance(value, int)
    ]
    assert len(ports) == len(set(ports)) >= 10


def test_readme_tables_show_the_endpoints_the_code_uses() -> None:
    readme = (REPO / "README.md").read_text()
    table = "\n".join(line for line in readme.splitlines() if line.startswith("|"))
    for shown in (
        endpoints.INGEST_URL,
        endpoints.CLEAN_URL,
        endpoints.AUDIT_URL,
        endpoints.S3_URL,
        endpoints.KAFKA_BOOTSTRAP_SERVERS,
        f"{endpoints.HOST}:{endpoints.POSTGRES_PORT}",
        endpoints.postgres_url(driver="asyncpg"),
    ):
        assert shown in table, f"README.md's tables do not show {shown}"
    stack_readme = (REPO / "deploy" / "stack" / "README.md").read_text()
    servers = "\n".join(line for line in stack_readme.splitlines() if line.startswith("|"))
    for port in (
        endpoints.KAFKA_PORT,
        endpoints.KAFKA_CONTROLLER_PORT,
        endpoints.S3_PORT,
        endpoints.SEAWEEDFS_FILER_PORT,
        endpoints.SEAWEEDFS_MASTER_PORT,
        endpoints.SEAWEEDFS_VOLUME_PORT,
        endpoints.POSTGRES_PORT,
    ):
        assert re.search(rf"\b{port}\b", servers), f"deploy/stack/README.md lacks port {port}"
    assert endpoints.postgres_url() in servers
