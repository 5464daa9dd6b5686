"""The JSON of the backlog, health and vendors pages."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

# ------------------------------------------------------------------------------ backlog


class GroupLag(BaseModel):
    """A consumer group's lag on one topic, summed over the topic's partitions."""

    group: str
    topic: str
    lag: int = Field(description="messages not yet consumed: end - committed")
    committed: int = Field(description="sum of committed offsets (first offset where none)")
    end: int = Field(description="sum of end offsets")
    partitions: int


class OutboxWaiting(BaseModel):
    """Outbox rows a service has not published to Kafka yet (its conveyor_outbox_waiting)."""

    service: str
    url: str
    waiting: int | None
    error: str | None = Field(description="why the figure is missing (service down, ...)")


class DeadLetter(BaseModel):
    event_id: str
    at: datetime
    consumer_group: str
    original_topic: str
    original_partition: int
    original_offset: int
    original_type: str | None
    original_event_id: str | None
    error: str


class DeadLetters(BaseModel):
    count: int
    items: list[DeadLetter] = Field(description="newest first")


class VendorTasks(BaseModel):
    """Tasks out with a vendor (name and kind null while its creation is not read yet)."""

    vendor_id: uuid.UUID
    name: str | None
    kind: str | None
    capacity: int | None
    dispatched: int
    rework: int


class JobQueue(BaseModel):
    """A labeling job and its tasks waiting for a vendor."""

    job_id: uuid.UUID
    name: str
    dataset_id: uuid.UUID
    state: str
    queued: int


class Backlog(BaseModel):
    lag: list[GroupLag] = Field(description="Conveyor's consumer groups (conveyor-*) by topic")
    lag_error: str | None = Field(description="why Kafka's offsets could not be read")
    outbox: list[OutboxWaiting]
    dead_letters: DeadLetters
    vendors: list[VendorTasks]
    jobs: list[JobQueue] = Field(description="most queued first (at most 100)")


# ------------------------------------------------------------------------------- health


class ServiceHealth(BaseModel):
    name: str
    url: str
    up: bool = Field(description="/healthz answered")
    ready: bool = Field(description="/readyz said ready")
    checks: dict[str, str] = Field(description="/readyz's checks: name -> ok | error: <why>")
    version: str | None
    error: str | None


class ServerHealth(BaseModel):
    name: str = Field(description="kafka | postgres | s3")
    up: bool
    version: str | None = Field(
        description="postgres: its version(); s3: the Server header; kafka: the highest "
        "Produce and Fetch protocol versions (the broker does not tell its release)"
    )
    error: str | None


class TraceViewer(BaseModel):
    url: str
    up: bool
    error: str | None


class Health(BaseModel):
    services: list[ServiceHealth]
    servers: list[ServerHealth]
    trace_viewer: TraceViewer


# ------------------------------------------------------------------------------ vendors


class VendorCard(BaseModel):
    """A vendor with QC's scorecard over the window (null when QC counted nothing for it, or
    QC is down) and its day-by-day trend."""

    vendor_id: uuid.UUID
    name: str | None
    kind: str | None
    capacity: int | None
    scorecard: dict[str, Any] | None = Field(
        description="QC's {figures, counters} (see QC's GET /v1/scorecards)"
    )
    trend: list[dict[str, Any]] = Field(description="QC's [{day, figures, counters}]")


class Vendors(BaseModel):
    items: list[VendorCard]
    error: str | None = Field(description="why QC's figures are missing")
