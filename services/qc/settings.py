"""QC settings (env prefix ``CONVEYOR_QC_``, falling back to ``CONVEYOR_``)."""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared import endpoints
from shared.settings import ServiceSettings


class QcSettings(ServiceSettings):
    """Settings of the qc service; the ``default_*`` ones are a job's policy until it sets its
    own (``PUT /v1/jobs/{id}/qc-policy``)."""

    service_name: ClassVar[str] = "qc"
    model_config = SettingsConfigDict(env_prefix="CONVEYOR_QC_", extra="ignore")

    port: int = endpoints.QC_PORT
    ingest_url: str = endpoints.INGEST_URL
    consumer_group: str = "conveyor-qc"

    # Shapes of two annotators match when their IoU is at least this.
    default_iou_threshold: float = Field(default=0.5, gt=0, le=1)
    # Below this agreement (F1 x mean IoU of matched shapes) an asset goes to review.
    default_min_agreement: float = Field(default=0.7, ge=0, le=1)
    # With overlap >= 2, consensus runs on the answers in once this long has passed since
    # the first (the missing replicas count as missing).
    default_consensus_timeout_seconds: float = Field(default=24 * 3600.0, gt=0)
    # How often waiting assets are checked against their job's consensus timeout.
    consensus_sweep_seconds: float = Field(default=30.0, gt=0)
