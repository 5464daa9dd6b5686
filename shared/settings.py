"""Settings shared by every service.

Each service subclasses :class:`ServiceSettings` with its own env prefix
(``CONVEYOR_INGEST_``, ``CONVEYOR_AUDIT_``...). A value is looked up first under the
service prefix, then under the common ``CONVEYOR_`` prefix, then falls back to the
development default, so one ``CONVEYOR_DATABASE_URL`` serves every service while
``CONVEYOR_AUDIT_DATABASE_URL`` can still point one service elsewhere.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from shared import endpoints

DEV_ADMIN_KEY = "cvk_dev_admin_change_me"
DEV_S3_SECRET = "conveyor-dev-secret"  # noqa: S105 - documented development default
DEV_WEBHOOK_TOKEN = "dev-objectstore-token"  # noqa: S105 - documented development default


class ServiceSettings(BaseSettings):
    """Connection settings and knobs common to all services."""

    service_name: ClassVar[str] = "conveyor"
    model_config = SettingsConfigDict(env_prefix="CONVEYOR_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    host: str = endpoints.HOST
    port: int = 8000
    # HTTP worker processes; each also runs its own consumer and outbox relay.
    workers: int = 1
    log_level: str = "INFO"

    database_url: str = endpoints.postgres_url(driver="asyncpg")
    database_pool_size: int = 20

    kafka_bootstrap_servers: str = endpoints.KAFKA_BOOTSTRAP_SERVERS

    s3_endpoint: str = endpoints.S3_ENDPOINT
    s3_public_endpoint: str | None = None
    s3_access_key: str = "conveyor"
    s3_secret_key: str = DEV_S3_SECRET
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    # A store that accepts connections but does not answer (hung, overloaded) fails a call
    # after this long instead of holding the request: the API answers 503, consumers retry.
    s3_connect_timeout_seconds: float = 5.0
    s3_read_timeout_seconds: float = 15.0

    bootstrap_admin_key: str = DEV_ADMIN_KEY

    # Where finished spans go besides OTLP: a JSON-lines file (used by the test suite).
    trace_file: str | None = None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        common = EnvSettingsSource(settings_cls, env_prefix="CONVEYOR_")
        return (init_settings, env_settings, common, dotenv_settings, file_secret_settings)

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_production(self) -> ServiceSettings:
        if self.environment == "production":
            placeholders = {DEV_ADMIN_KEY, DEV_S3_SECRET, DEV_WEBHOOK_TOKEN, "conveyor"}
            for name in ("bootstrap_admin_key", "s3_secret_key", "objectstore_webhook_token"):
                if getattr(self, name, None) in placeholders:
                    raise ValueError(f"{name} still has its development default; set it")
        return self

    @property
    def asyncpg_dsn(self) -> str:
        """The database URL in the plain form asyncpg accepts (for LISTEN connections)."""
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
