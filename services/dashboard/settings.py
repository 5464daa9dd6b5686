"""Dashboard settings (env prefix ``CONVEYOR_DASHBOARD_``, falling back to ``CONVEYOR_``)."""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared import endpoints
from shared.settings import ServiceSettings


class DashboardSettings(ServiceSettings):
    """Settings of the dashboard service: where the other services answer, what the page
    links to, how many events one projection transaction takes."""

    service_name: ClassVar[str] = "dashboard"
    model_config = SettingsConfigDict(env_prefix="CONVEYOR_DASHBOARD_", extra="ignore")

    port: int = endpoints.DASHBOARD_PORT
    consumer_group: str = "conveyor-dashboard"
    # The services whose APIs the dashboard calls for detail (with the caller's key).
    ingest_url: str = endpoints.INGEST_URL
    clean_url: str = endpoints.CLEAN_URL
    labeling_url: str = endpoints.LABELING_URL
    qc_url: str = endpoints.QC_URL
    audit_url: str = endpoints.AUDIT_URL
    # The trace viewer a person opens an asset's trace in ({trace_id} is filled in).
    trace_url_template: str = "http://127.0.0.1:16686/trace/{trace_id}"
    # Largest run of events of one type projected in one transaction.
    batch_size: int = Field(default=500, ge=1, le=5000)
    # Longest side of a thumbnail in conveyor-derived, in pixels.
    thumbnail_size: int = Field(default=256, ge=32, le=1024)
    # Timeout of one call to another service's API.
    upstream_timeout_seconds: float = Field(default=10.0, gt=0)
