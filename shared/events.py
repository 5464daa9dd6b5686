"""Every Kafka topic and event type Conveyor uses, with their versioned payloads.

A payload change that breaks readers is a new type (``...v2``), never an edit of a v1 model.
"""

from __future__ import annotations

from collections.abc import Mapping
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


class VideoOverlap(Payload):
    """Where a duplicate video shows an earlier video's footage: ``start_seconds``-
    ``end_seconds`` of this video are ``original_start_seconds``-``original_end_seconds`` of
    ``duplicate_of`` (seconds from each clip's start)."""

    duplicate_of: UUID
    start_seconds: float
    end_seconds: float
    original_start_seconds: float
    original_end_seconds: float


class AssetCleanedV1(Payload):
    """An asset passed the dataset's cleaning policy (possibly with non-blocking flags)."""

    asset_id: UUID
    dataset_id: UUID
    dataset_slug: str
    media_type: str
    metrics: dict[str, float]
    flags: list[QualityReason] = Field(default_factory=list)
    policy_version: int
    # set when a ``video_duplicate`` flag is among the findings (optional: older readers skip it)
    video_duplicate: VideoOverlap | None = None


def pixels(metrics: Mapping[str, float], name: str) -> int | None:
    """A size metric of a verdict (``width``, ``height``) in whole pixels; None when clean did
    not measure it (an unreadable file)."""
    value = metrics.get(name)
    return None if value is None else int(value)


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
    # set when a ``video_duplicate`` reason or flag is among the findings (optional)
    video_duplicate: VideoOverlap | None = None


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


# ------------------------------------------------------------------ labeling (labeling-dispatch)


class OntologyVersionCreatedV1(Payload):
    """A new, immutable version of an ontology (label schema) was created."""

    ontology_id: UUID
    name: str
    version: int
    classes: list[str]
    created_by: str


class VendorCreatedV1(Payload):
    """A labeling vendor was registered (its credentials never appear in an event)."""

    vendor_id: UUID
    name: str
    kind: Literal["webhook", "label_studio"]
    capacity: int
    created_by: str


class VendorChangedV1(Payload):
    """A vendor's settings changed, it was disabled or enabled, or its credentials rotated."""

    vendor_id: UUID
    change: str
    changed_by: str


class JobCreatedV1(Payload):
    """A labeling job was created: a dataset, a pinned ontology version and its vendors."""

    job_id: UUID
    name: str
    dataset_id: UUID
    ontology_id: UUID
    ontology_version: int
    vendor_ids: list[UUID]
    overlap: int
    gold_ratio: float
    priority: Literal["arrival", "uncertainty"]
    lease_seconds: int
    created_by: str


class JobStateChangedV1(Payload):
    """A job was paused, resumed, cancelled or completed."""

    job_id: UUID
    state: Literal["open", "paused", "cancelled", "completed"]
    previous_state: str
    changed_by: str


class TaskCreatedV1(Payload):
    """An asset (one replica of it) entered a job's queue as a labeling task."""

    task_id: UUID
    job_id: UUID
    asset_id: UUID
    dataset_id: UUID
    replica: int
    gold: bool
    # A gold task's known answer (canonical shapes), for QC to score the vendor's against;
    # never sent to a vendor.
    gold_shapes: list[dict[str, Any]] | None = None


class TaskDispatchedV1(Payload):
    """A vendor acknowledged a delivery holding this task; its lease runs from now."""

    task_id: UUID
    job_id: UUID
    asset_id: UUID
    vendor_id: UUID
    delivery_id: UUID
    attempt: int
    lease_expires_at: datetime


class TaskExpiredV1(Payload):
    """A vendor did not answer a task within its lease; the task went back to the queue."""

    task_id: UUID
    job_id: UUID
    asset_id: UUID
    vendor_id: UUID
    attempt: int
    requeued: bool


class TaskReworkSentV1(Payload):
    """A task sent back to a vendor for rework, with the reviewer's comment."""

    task_id: UUID
    job_id: UUID
    asset_id: UUID
    vendor_id: UUID | None
    comment: str
    requested_by: str


class DeliveryFailedV1(Payload):
    """Conveyor gave up delivering a task batch to a vendor (or the vendor refused it)."""

    delivery_id: UUID
    vendor_id: UUID
    job_id: UUID
    task_ids: list[UUID]
    attempts: int
    status_code: int | None
    error: str


class AnnotationSubmittedV1(Payload):
    """A vendor's annotation of a task, validated against the job's ontology version.

    ``shapes`` are in Conveyor's canonical form: absolute pixel coordinates on the asset as
    ingested (docs/labeling.md).
    """

    annotation_id: UUID
    task_id: UUID
    job_id: UUID
    asset_id: UUID
    dataset_id: UUID
    vendor_id: UUID
    annotator_id: str
    replica: int
    gold: bool
    ontology_id: UUID
    ontology_version: int
    shapes: list[dict[str, Any]]
    vendor_submitted_at: datetime | None
    received_at: datetime
    lead_time_seconds: float | None
    # A vendor that can change an answer after submitting it (Label Studio) sends versions:
    # version 2 supersedes version 1, and so on; ``vendor_ref`` is the vendor's own id of it.
    version: int = 1
    supersedes: UUID | None = None
    vendor_ref: str | None = None


class AnnotationWithdrawnV1(Payload):
    """A stored annotation deleted at the vendor (in Label Studio) after it was submitted.

    The annotation stays stored, marked withdrawn; it no longer counts as the task's answer.
    """

    annotation_id: UUID
    task_id: UUID
    job_id: UUID
    asset_id: UUID
    vendor_id: UUID
    annotator_id: str
    version: int
    vendor_ref: str | None
    reason: str
    withdrawn_at: datetime


class AnnotationRefusedV1(Payload):
    """An inbound vendor request that changed nothing: bad signature, replay, late, invalid."""

    vendor_id: UUID | None
    task_id: UUID | None
    delivery_id: str | None
    reason: str
    status_code: int
    problems: list[dict[str, Any]] = Field(default_factory=list)


class AnnotationReworkRequestedV1(Payload):
    """QC sends an asset's tasks of a job back for rework, with the reviewer's comment.

    ``vendor_id`` None: each task goes back to the vendor that answered it; else to that one.
    """

    job_id: UUID
    asset_id: UUID
    dataset_id: UUID
    task_ids: list[UUID]
    comment: str
    requested_by: str
    vendor_id: UUID | None = None
    round: int


class AnnotationAcceptedV1(Payload):
    """An asset's labels in a job were accepted (automatically or by a reviewer)."""

    job_id: UUID
    asset_id: UUID
    dataset_id: UUID
    annotation_ids: list[UUID]
    shapes: list[dict[str, Any]]
    decided_by: str
    automatic: bool
    comment: str | None = None
    agreement: float | None = None


class AnnotationRejectedV1(Payload):
    """A reviewer rejected an asset's labels in a job: they never become the dataset's."""

    job_id: UUID
    asset_id: UUID
    dataset_id: UUID
    annotation_ids: list[UUID]
    decided_by: str
    comment: str


class ConsensusComputedV1(Payload):
    """QC compared the annotators of one asset in a job (all replicas in, or timed out)."""

    job_id: UUID
    asset_id: UUID
    dataset_id: UUID
    annotation_ids: list[UUID]
    annotators: list[str]
    agreement: float
    mean_iou: float | None
    f1: float | None
    unmatched_shapes: int
    class_disagreements: int
    passed: bool
    reasons: list[str] = Field(default_factory=list)
    timed_out: bool = False


class GoldScoredV1(Payload):
    """A vendor's answer to a gold task scored against the known answer."""

    job_id: UUID
    asset_id: UUID
    task_id: UUID
    annotation_id: UUID
    vendor_id: UUID
    annotator_id: str
    precision: float | None
    recall: float | None
    f1: float | None
    mean_iou: float | None
    class_accuracy: float | None
    true_positives: int
    false_positives: int
    false_negatives: int


class DatasetVersionCreatedV1(Payload):
    """QC froze a dataset's accepted labels into a new immutable version (ready to export)."""

    dataset_id: UUID
    dataset_slug: str
    version: int
    item_count: int
    shape_count: int
    manifest_hash: str
    created_by: str


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
ONTOLOGY_VERSION_CREATED = EventType(
    "conveyor.ontology.version_created.v1", LABELING_EVENTS, OntologyVersionCreatedV1
)
VENDOR_CREATED = EventType("conveyor.vendor.created.v1", LABELING_EVENTS, VendorCreatedV1)
VENDOR_CHANGED = EventType("conveyor.vendor.changed.v1", LABELING_EVENTS, VendorChangedV1)
JOB_CREATED = EventType("conveyor.job.created.v1", LABELING_EVENTS, JobCreatedV1)
JOB_STATE_CHANGED = EventType("conveyor.job.state_changed.v1", LABELING_EVENTS, JobStateChangedV1)
TASK_CREATED = EventType("conveyor.task.created.v1", LABELING_EVENTS, TaskCreatedV1)
TASK_DISPATCHED = EventType("conveyor.task.dispatched.v1", LABELING_EVENTS, TaskDispatchedV1)
TASK_EXPIRED = EventType("conveyor.task.expired.v1", LABELING_EVENTS, TaskExpiredV1)
TASK_REWORK_SENT = EventType("conveyor.task.rework_sent.v1", LABELING_EVENTS, TaskReworkSentV1)
DELIVERY_FAILED = EventType("conveyor.delivery.failed.v1", LABELING_EVENTS, DeliveryFailedV1)
ANNOTATION_SUBMITTED = EventType(
    "conveyor.annotation.submitted.v1", LABELING_EVENTS, AnnotationSubmittedV1
)
ANNOTATION_REFUSED = EventType(
    "conveyor.annotation.refused.v1", LABELING_EVENTS, AnnotationRefusedV1
)
ANNOTATION_WITHDRAWN = EventType(
    "conveyor.annotation.withdrawn.v1", LABELING_EVENTS, AnnotationWithdrawnV1
)
ANNOTATION_REWORK_REQUESTED = EventType(
    "conveyor.annotation.rework_requested.v1", QC_EVENTS, AnnotationReworkRequestedV1
)
ANNOTATION_ACCEPTED = EventType("conveyor.annotation.accepted.v1", QC_EVENTS, AnnotationAcceptedV1)
ANNOTATION_REJECTED = EventType("conveyor.annotation.rejected.v1", QC_EVENTS, AnnotationRejectedV1)
CONSENSUS_COMPUTED = EventType("conveyor.qc.consensus_computed.v1", QC_EVENTS, ConsensusComputedV1)
GOLD_SCORED = EventType("conveyor.qc.gold_scored.v1", QC_EVENTS, GoldScoredV1)
DATASET_VERSION_CREATED = EventType(
    "conveyor.dataset.version_created.v1", QC_EVENTS, DatasetVersionCreatedV1
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
        ONTOLOGY_VERSION_CREATED,
        VENDOR_CREATED,
        VENDOR_CHANGED,
        JOB_CREATED,
        JOB_STATE_CHANGED,
        TASK_CREATED,
        TASK_DISPATCHED,
        TASK_EXPIRED,
        TASK_REWORK_SENT,
        DELIVERY_FAILED,
        ANNOTATION_SUBMITTED,
        ANNOTATION_REFUSED,
        ANNOTATION_WITHDRAWN,
        ANNOTATION_REWORK_REQUESTED,
        ANNOTATION_ACCEPTED,
        ANNOTATION_REJECTED,
        CONSENSUS_COMPUTED,
        GOLD_SCORED,
        DATASET_VERSION_CREATED,
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
