"""Where everything listens on a development machine: the one place for the local defaults.

The local stack (``deploy/stack/``, ``make stack-up``) runs Postgres, Kafka, SeaweedFS and Label
Studio on these ports (and, for ``make run``, Jaeger); ``make run`` (``deploy/services.py``)
starts the services on theirs. The settings classes (``shared.settings``,
``services/*/settings.py``) take their defaults from here, so an environment variable
(``CONVEYOR_DATABASE_URL``, ``CONVEYOR_INGEST_PORT``, ...) still overrides each of them; the
stack scripts, test fixtures, benchmarks and the CLI's defaults use this module directly. Change
a port here and everything that runs on this machine follows; ``docker-compose.yml`` and the
stack's own config templates keep their own literals.

Standard library only: ``deploy/stack/stack.py down`` imports it before the venv exists.
"""

from __future__ import annotations

from typing import Final

HOST: Final = "127.0.0.1"
"""Every local server and service binds to, and is reached on, the loopback address."""

# ------------------------------------------------------------------ servers of the local stack

POSTGRES_PORT: Final = 55432
KAFKA_PORT: Final = 19092
KAFKA_CONTROLLER_PORT: Final = 19093  # KRaft controller listener, used by the broker only
S3_PORT: Final = 18333  # SeaweedFS's S3 gateway
SEAWEEDFS_FILER_PORT: Final = 18888
SEAWEEDFS_MASTER_PORT: Final = 19333
SEAWEEDFS_VOLUME_PORT: Final = 18080

DATABASE: Final = "conveyor"
DATABASE_USER: Final = "conveyor"  # owns DATABASE, may create databases (tests, benchmarks)
DATABASE_PASSWORD: Final = "conveyor"  # noqa: S105 - local development cluster only
SUPERUSER: Final = "postgres"
SUPERUSER_PASSWORD: Final = "postgres"  # noqa: S105 - local development cluster only

LABEL_STUDIO_PORT: Final = 8080  # Label Studio, a labeling tool the stack runs as a vendor
LABEL_STUDIO_ADMIN_EMAIL: Final = "admin@conveyor.local"
LABEL_STUDIO_ADMIN_PASSWORD: Final = "conveyor-label-studio"  # noqa: S105 - local development only
LABEL_STUDIO_TOKEN: Final = "cvls_dev_token_change_me"  # noqa: S105 - local development only
"""The admin's API token (``Authorization: Token <it>``), made at Label Studio's first start."""

JAEGER_UI_PORT: Final = 16686  # Jaeger, the trace viewer `make run` starts: UI and query API
JAEGER_QUERY_GRPC_PORT: Final = 16685  # its query API over gRPC (unused, but it always listens)
JAEGER_OTLP_GRPC_PORT: Final = 4317
JAEGER_OTLP_HTTP_PORT: Final = 4318

KAFKA_BOOTSTRAP_SERVERS: Final = f"{HOST}:{KAFKA_PORT}"
S3_ENDPOINT: Final = f"{HOST}:{S3_PORT}"
"""host:port of the S3 API, the form the ``minio`` SDK and ``CONVEYOR_S3_ENDPOINT`` take."""
S3_URL: Final = f"http://{S3_ENDPOINT}"
LABEL_STUDIO_URL: Final = f"http://{HOST}:{LABEL_STUDIO_PORT}"
JAEGER_URL: Final = f"http://{HOST}:{JAEGER_UI_PORT}"
OTLP_HTTP_ENDPOINT: Final = f"http://{HOST}:{JAEGER_OTLP_HTTP_PORT}"
"""What ``OTEL_EXPORTER_OTLP_ENDPOINT`` holds to send traces to the local Jaeger."""

# ------------------------------------------------------------------------------- services

INGEST_PORT: Final = 8001
CLEAN_PORT: Final = 8002
LABELING_PORT: Final = 8003
QC_PORT: Final = 8004
AUDIT_PORT: Final = 8005
DASHBOARD_PORT: Final = 8006


def service_url(port: int) -> str:
    """Base URL of a service's HTTP API on this machine, e.g. ``http://127.0.0.1:8001``."""
    return f"http://{HOST}:{port}"


INGEST_URL: Final = service_url(INGEST_PORT)
CLEAN_URL: Final = service_url(CLEAN_PORT)
LABELING_URL: Final = service_url(LABELING_PORT)
QC_URL: Final = service_url(QC_PORT)
AUDIT_URL: Final = service_url(AUDIT_PORT)
DASHBOARD_URL: Final = service_url(DASHBOARD_PORT)


def postgres_url(
    database: str = DATABASE,
    *,
    user: str = DATABASE_USER,
    password: str = DATABASE_PASSWORD,
    driver: str | None = None,
    port: int = POSTGRES_PORT,
) -> str:
    """URL of a database of the local Postgres, as the application role by default.

    ``driver="asyncpg"`` gives the SQLAlchemy form (``postgresql+asyncpg://...``, what
    ``CONVEYOR_DATABASE_URL`` holds); without it the plain form asyncpg and psql accept.
    The superuser's: ``postgres_url("postgres", user=SUPERUSER, password=SUPERUSER_PASSWORD)``.
    """
    scheme = f"postgresql+{driver}" if driver else "postgresql"
    return f"{scheme}://{user}:{password}@{HOST}:{port}/{database}"
