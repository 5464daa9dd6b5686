"""Audit settings (env prefix ``CONVEYOR_AUDIT_``, falling back to ``CONVEYOR_``)."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared import endpoints
from shared.settings import ServiceSettings


class AuditSettings(ServiceSettings):
    """Settings of the audit service."""

    service_name: ClassVar[str] = "audit"
    model_config = SettingsConfigDict(env_prefix="CONVEYOR_AUDIT_", extra="ignore")

    port: int = endpoints.AUDIT_PORT
    # The ingest service owns API keys; audit asks it who a key belongs to.
    ingest_url: str = endpoints.INGEST_URL
    consumer_group: str = "conveyor-audit"
