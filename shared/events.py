"""Every Kafka topic and event type Conveyor uses, with their versioned payloads.

A payload change that breaks readers is a new type (``...v2``), never an edit of a v1 model.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


@dataclass(frozen=True)
class Topic:
    """A Kafka topic with the partition count the project creates it with."""

    name: str
    partitions: int


OBJECTSTORE_EVENTS = Topic("conveyor.objectstore.events", 3)
INGEST_EVENTS = Topic("conveyor.ingest.events", 6)
CLEAN_EVENTS = Topic("conveyor.clean.events", 6)
LABELING_EVENTS = Topic("conveyor.labeling.events", 6)
QC_EVENTS = Topic("conveyor.qc.events", 6)
DEAD_LETTERS = Topic("conveyor.dlq", 3)

ALL_TOPICS: tuple[Topic, ...] = (
    OBJECTSTORE_EVENTS,
    INGEST_EVENTS,
    CLEAN_EVENTS,
    LABELING_EVENTS,
    QC_EVENTS,
    DEAD_LETTERS,
)
# The audit service subscribes by pattern so a topic added later is audited without a change.
ALL_TOPICS_PATTERN = r"^conveyor\..*"


class Payload(BaseModel):
    """Base of every event payload: immutable, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ObjectCreatedV1(Payload):
    """An object appeared in the landing bucket (from the store's notifications or a reconcile)."""

    bucket: str
    key: str
    size_bytes: int | None = None
    etag: str | None = None
    detected_by: Literal["notification", "reconcile"] = "notification"


class DatasetCreatedV1(Payload):
    """A dataset was created."""

    dataset_id: UUID
    slug: str
    name: str
    created_by: str


class AssetIngestedV1(Payload):
    """A new asset was stored in ``conveyor-raw`` and registered."""

    asset_id: UUID
    dataset_id: UUID
    dataset_slug: str
    sha256: str
    size_bytes: int
    media_type: str
    filename: str
    source: Literal["upload", "objectstore", "frame"]
    uploaded_by: str
    tags: list[str] = Field(default_factory=list)
    bucket: str
    object_key: str
    # set for frames sampled from a video: the video asset and where in it the frame is shown
    parent_asset_id: UUID | None = None
    frame_time_seconds: float | None = None


class DropRejectedV1(Payload):
    """An object dropped into the landing bucket could not become an asset."""

    bucket: str
    key: str
    reason: Literal[
        "unknown_dataset", "missing_dataset", "unsupported_media_type", "too_large", "empty"
    ]
    message: str


class QualityReason(Payload):
    """Why an asset was rejected or flagged: the check, what was measured, the limit crossed."""

    code: str
    message: str
    value: float | None = None
    threshold: float | None = None


class AssetCleanedV1(Payload):
    """An asset passed the dataset's cleaning policy (possibly with non-blocking flags)."""

    asset_id: UUID
    dataset_id: UUID
    dataset_slug: str
    media_type: str
    metrics: dict[str, float]
    flags: list[QualityReason] = Field(default_factory=list)
    policy_version: int


class AssetRejectedV1(Payload):
    """An asset failed the dataset's cleaning policy; every blocking reason is listed."""

    asset_id: UUID
    dataset_id: UUID
    dataset_slug: str
    media_type: str
    metrics: dict[str, float]
    reasons: list[QualityReason]
    flags: list[QualityReason] = Field(default_factory=list)
    policy_version: int


class FrameSampledV1(Payload):
    """The clean service sampled a frame of a video into ``conveyor-derived`` for labeling."""

    video_asset_id: UUID
    dataset_id: UUID
    dataset_slug: str
    frame_index: int
    frame_time_seconds: float
    bucket: str
    object_key: str
    sha256: str
    size_bytes: int


class ApiKeyCreatedV1(Payload):
    """An API key was issued (the key itself never appears in an event)."""

    key_id: UUID
    name: str
    role: Literal["admin", "uploader", "viewer"]
    created_by: str
    # The datasets the key is limited to; None (or absent, from older producers): all.
    datasets: list[UUID] | None = None


class ApiKeyRevokedV1(Payload):
    """An API key was revoked."""

    key_id: UUID
    revoked_by: str


class ApiKeyScopeChangedV1(Payload):
    """The datasets an API key may touch were changed (None: every dataset)."""

    key_id: UUID
    datasets: list[UUID] | None
    changed_by: str


class DeadLetterV1(Payload):
    """A message a consumer gave up on after bounded retries (or could not parse)."""

    original_topic: str
    original_partition: int
    original_offset: int
    original_event_id: str | None
    original_type: str | None
    consumer_group: str
    error: str
    original_headers: dict[str, str]
    original_value: str


P = TypeVar("P", bound=Payload)


@dataclass(frozen=True)
class EventType(Generic[P]):
    """A versioned CloudEvents type, the topic it travels on and its payload model."""

    name: str
    topic: Topic
    payload: type[P]


OBJECT_CREATED = EventType(
    "conveyor.objectstore.object_created.v1", OBJECTSTORE_EVENTS, ObjectCreatedV1
)
DATASET_CREATED = EventType("conveyor.dataset.created.v1", INGEST_EVENTS, DatasetCreatedV1)
ASSET_INGESTED = EventType("conveyor.asset.ingested.v1", INGEST_EVENTS, AssetIngestedV1)
DROP_REJECTED = EventType("conveyor.ingest.drop_rejected.v1", INGEST_EVENTS, DropRejectedV1)
ASSET_CLEANED = EventType("conveyor.asset.cleaned.v1", CLEAN_EVENTS, AssetCleanedV1)
ASSET_REJECTED = EventType("conveyor.asset.rejected.v1", CLEAN_EVENTS, AssetRejectedV1)
FRAME_SAMPLED = EventType("conveyor.video.frame_sampled.v1", CLEAN_EVENTS, FrameSampledV1)
API_KEY_CREATED = EventType("conveyor.api_key.created.v1", INGEST_EVENTS, ApiKeyCreatedV1)
API_KEY_REVOKED = EventType("conveyor.api_key.revoked.v1", INGEST_EVENTS, ApiKeyRevokedV1)
API_KEY_SCOPE_CHANGED = EventType(
    "conveyor.api_key.scope_changed.v1", INGEST_EVENTS, ApiKeyScopeChangedV1
)
DEAD_LETTER = EventType("conveyor.dead_letter.v1", DEAD_LETTERS, DeadLetterV1)

EVENT_TYPES: dict[str, EventType[Any]] = {
    t.name: t
    for t in (
        OBJECT_CREATED,
        DATASET_CREATED,
        ASSET_INGESTED,
        DROP_REJECTED,
        ASSET_CLEANED,
        ASSET_REJECTED,
        FRAME_SAMPLED,
        API_KEY_CREATED,
        API_KEY_REVOKED,
        API_KEY_SCOPE_CHANGED,
        DEAD_LETTER,
    )
}


_BY_PAYLOAD: dict[type[Payload], EventType[Any]] = {t.payload: t for t in EVENT_TYPES.values()}
assert len(_BY_PAYLOAD) == len(EVENT_TYPES), "each payload model belongs to one event type"


def event_type_of(payload: Payload) -> EventType[Any]:
    """The event type a payload is sent as (each payload model belongs to exactly one)."""
    try:
        return _BY_PAYLOAD[type(payload)]
    except KeyError:
        raise TypeError(f"{type(payload).__name__} is not the payload of any event type") from None


def types_on(topic: Topic) -> list[EventType[Any]]:
    """Every event type that travels on ``topic``."""
    return [t for t in EVENT_TYPES.values() if t.topic == topic]


class Envelope(BaseModel):
    """A CloudEvents 1.0 event as Conveyor carries it (binary mode on Kafka).

    ``actor`` is a CloudEvents extension attribute: who caused the event (API key name,
    ``objectstore``, a service). ``traceparent`` is the W3C trace context of the producer.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    source: str
    type: str
    time: datetime
    subject: str | None = None
    actor: str | None = None
    data: dict[str, Any]
    traceparent: str | None = None

    def payload(self) -> Payload:
        """Validate ``data`` against the registered model of this event's type."""
        event_type = EVENT_TYPES.get(self.type)
        if event_type is None:
            raise UnknownEventType(self.type)
        payload: Payload = event_type.payload.model_validate(self.data)
        return payload


class UnknownEventType(ValueError):
    """An event type no module in this version of Conveyor knows."""
