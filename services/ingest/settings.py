"""Ingest settings (env prefix ``CONVEYOR_INGEST_``, falling back to ``CONVEYOR_``)."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from shared import endpoints
from shared.settings import DEV_WEBHOOK_TOKEN, ServiceSettings


class IngestSettings(ServiceSettings):
    """Settings of the ingest service."""

    service_name: ClassVar[str] = "ingest"
    model_config = SettingsConfigDict(env_prefix="CONVEYOR_INGEST_", extra="ignore")

    port: int = endpoints.INGEST_PORT
    max_upload_bytes: int = 5 * 1024**3
    # A whole upload request (all its files); bigger bodies are cut off with 413 mid-stream.
    max_request_bytes: int = 5 * 1024**3 + 64 * 1024**2
    objectstore_webhook_token: str = DEV_WEBHOOK_TOKEN
    download_url_ttl_seconds: int = 900
    # Remove a landing-bucket object once it is an asset (its bytes then live in conveyor-raw).
    delete_landing_after_ingest: bool = True
    # List the landing bucket once at start-up to pick up drops missed while ingest was down.
    reconcile_landing_on_start: bool = True
    consumer_group: str = "conveyor-ingest"
