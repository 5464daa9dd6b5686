"""Labeling-dispatch settings (env prefix ``CONVEYOR_LABELING_``, falling back to ``CONVEYOR_``)."""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared import endpoints
from shared.settings import ServiceSettings


class LabelingSettings(ServiceSettings):
    """Settings of the labeling-dispatch service."""

    service_name: ClassVar[str] = "labeling-dispatch"
    model_config = SettingsConfigDict(env_prefix="CONVEYOR_LABELING_", extra="ignore")

    port: int = endpoints.LABELING_PORT
    # The ingest service owns people's API keys; labeling asks it who a key belongs to.
    ingest_url: str = endpoints.INGEST_URL
    consumer_group: str = "conveyor-labeling-dispatch"

    # How often the dispatcher looks for queued tasks, due deliveries and lapsed leases when
    # nothing wakes it sooner.
    dispatch_interval_seconds: float = Field(default=0.2, gt=0)
    # ... but never more often than this, however often it is woken.
    dispatch_min_round_gap_seconds: float = Field(default=0.1, ge=0)
    # Default lease of a task when a job does not set one.
    default_lease_seconds: int = Field(default=24 * 3600, ge=1)
    # Outbound deliveries: first retry after this long, doubling up to max_retry_delay, with
    # +/- retry_jitter of each delay, given up once retry_horizon has passed since the first try.
    first_retry_seconds: float = Field(default=10.0, gt=0)
    max_retry_delay_seconds: float = Field(default=4 * 3600.0, gt=0)
    retry_horizon_seconds: float = Field(default=24 * 3600.0, gt=0)
    retry_jitter: float = Field(default=0.2, ge=0, lt=1)
    delivery_timeout_seconds: float = Field(default=10.0, gt=0)
    # Deliveries sent at the same time (across vendors).
    delivery_concurrency: int = Field(default=8, ge=1, le=256)

    # Inbound vendor webhooks: signed timestamps older or newer than this are refused.
    webhook_tolerance_seconds: int = Field(default=300, ge=1)
    webhook_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Presigned image links sent to vendors live this long (past the longest lease).
    image_link_seconds: int = Field(default=7 * 24 * 3600, ge=60)

    # Label Studio vendors: the server and token a new `label_studio` vendor uses unless it
    # names its own, the address Label Studio's webhooks reach this service at, and how often
    # every project is reconciled (annotations whose webhook was lost; Label Studio never
    # retries one).
    label_studio_url: str = endpoints.LABEL_STUDIO_URL
    label_studio_token: str = endpoints.LABEL_STUDIO_TOKEN
    public_url: str = f"http://127.0.0.1:{endpoints.LABELING_PORT}"
    label_studio_sync_interval_seconds: float = Field(default=30.0, gt=0)
    # Comma-separated host names a `label_studio` vendor may name (empty: any). Registering a
    # vendor makes this service call the URL, so a locked-down deployment lists its servers.
    label_studio_allowed_hosts: str = ""
