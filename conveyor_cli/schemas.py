"""The JSON bodies the CLI reads from (and sends to) the services (ingest, clean, audit, labeling,
qc).

These mirror the services' response models (``services/*/schemas.py``) as the service sends
them: every field of a response model is always present (pydantic writes fields that have a
default too), ids and times are strings, and a field is ``... | None`` exactly when the
service may send ``null``. tests/unit/test_cli_contract.py checks each type against the
services' OpenAPI documents, so a field added or changed on either side fails that test.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, NotRequired, TypedDict, TypeVar

T = TypeVar("T")

Role = Literal["viewer", "uploader", "admin"]
Action = Literal["reject", "flag", "ignore"]


class Page(TypedDict, Generic[T]):
    """One page of a cursor-paginated listing."""

    items: list[T]
    next_cursor: str | None


# --------------------------------------------------------------------------- ingest


class Dataset(TypedDict):
    """A dataset as returned by the ingest service."""

    id: str
    slug: str
    name: str
    created_by: str
    created_at: str


class Asset(TypedDict):
    """An asset (one stored image or video) of a dataset."""

    id: str
    dataset_slug: str
    filename: str
    media_type: str
    size_bytes: int
    sha256: str
    source: str
    uploaded_by: str
    tags: list[str]
    created_at: str
    # For a frame sampled from a video: the video asset and when the frame is shown.
    parent_asset_id: str | None
    frame_time_seconds: float | None
    # True in an upload answer when the dataset already had these bytes (nothing stored).
    duplicate: bool


class AssetDetail(Asset):
    """``GET /v1/assets/{id}``: an asset plus a short-lived download link."""

    download_url: str
    download_url_expires_at: str


class ApiKey(TypedDict):
    """An API key as listed (the secret itself is never listed)."""

    id: str
    name: str
    role: Role
    created_at: str
    revoked_at: str | None
    # Slugs of the datasets the key is limited to; None: every dataset.
    datasets: list[str] | None


class CreatedApiKey(ApiKey):
    """Answer to key creation: the only time the secret ``key`` is shown."""

    key: str


# --------------------------------------------------------------------------- clean


class Finding(TypedDict):
    """One failed quality check: what it means, the measured value and the limit it crossed."""

    code: str
    message: str
    value: float | None
    threshold: float | None
    ranges: list[list[float]]  # where in a video, [start, end] seconds


class SharedFootage(TypedDict):
    """Where a duplicate video shows its original's footage (seconds from each clip's start)."""

    start: float
    end: float
    original_start: float
    original_end: float
    matched: int
    compared: int


class QualityReport(TypedDict):
    """``GET /v1/assets/{id}/quality``: everything clean knows about one asset."""

    asset_id: str
    dataset_id: str
    media_type: str
    status: str
    reasons: list[Finding]
    flags: list[Finding]
    metrics: dict[str, float]
    duplicate_of: str | None
    duplicate_kind: str | None
    duplicate_distance: int | None
    duplicate_overlap: SharedFootage | None
    policy_version: int
    created_at: str
    updated_at: str


class QualitySummary(TypedDict):
    """``GET /v1/datasets/{slug}/quality``: counts per issue and metric distributions."""

    dataset_slug: str
    assets: int
    cleaned: int
    rejected: int
    rejections_by_reason: dict[str, int]
    flags_by_reason: dict[str, int]
    # metric -> {"min", "p05", "p50", "p95", "max"}
    metric_distributions: dict[str, dict[str, float]]


class DuplicateCopy(TypedDict):
    """A later asset that copies a group's original."""

    asset_id: str
    kind: str
    distance: int


class DuplicateGroup(TypedDict):
    """An original (first arrived, kept) and its later copies."""

    original: str
    copies: list[DuplicateCopy]


class DuplicateGroups(TypedDict):
    """``GET /v1/datasets/{slug}/duplicates``."""

    dataset_slug: str
    groups: list[DuplicateGroup]


class CheckPolicy(TypedDict):
    """How one check is applied in a dataset (threshold fields are None for structural checks)."""

    action: Action
    metric: str | None
    threshold: float | None
    fails_when: str | None
    default_threshold: float | None


class Policy(TypedDict):
    """``GET /v1/datasets/{slug}/policy``: every check with its action and threshold."""

    dataset_slug: str
    version: int
    near_duplicate_radius: int
    checks: dict[str, CheckPolicy]


class PolicyRules(TypedDict, total=False):
    """Body of ``PUT /v1/datasets/{slug}/policy``; anything left out takes its default."""

    actions: dict[str, Action]
    thresholds: dict[str, float]
    near_duplicate_radius: int


class Reevaluation(TypedDict):
    """What a policy change did to the dataset's existing assets."""

    policy_version: int
    assets_checked: int
    assets_changed: int


class ReanalysisFailure(TypedDict):
    """An asset a re-analysis could not re-measure, and why."""

    asset_id: str
    reason: str


class Reanalysis(TypedDict):
    """``/v1/reanalyses/{id}``: a job re-measuring a dataset's stored files, and its progress."""

    id: str
    dataset_slug: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    rejudge: bool
    requested_by: str
    total: int
    done: int
    failed: int
    changed: int
    remaining: int
    rate_per_second: float | None
    eta_seconds: float | None
    failures: list[ReanalysisFailure]
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    updated_at: str


class AssetIngested(TypedDict):
    """A conveyor.asset.ingested.v1 payload, as the audit trail holds it (sent back to clean by
    ``conveyor quality backfill-sources``)."""

    asset_id: str
    dataset_id: str
    dataset_slug: str
    sha256: str
    size_bytes: int
    media_type: str
    filename: str
    source: Literal["upload", "objectstore", "frame"]
    uploaded_by: str
    tags: NotRequired[list[str]]
    bucket: str
    object_key: str
    parent_asset_id: NotRequired[str | None]
    frame_time_seconds: NotRequired[float | None]


class SourcesIn(TypedDict):
    """``POST /v1/datasets/{slug}/sources``: at most 500 payloads."""

    assets: list[AssetIngested]


class SourcesStored(TypedDict):
    """``POST /v1/datasets/{slug}/sources``: what a backfill of stored sources did."""

    received: int
    stored: int
    kept: int
    unknown: int


# --------------------------------------------------------------------------- audit


class AuditRecord(TypedDict):
    """One hash-chained audit log record."""

    seq: int
    event_id: str
    type: str
    subject: str | None
    actor: str | None
    service: str
    time: str
    trace_id: str | None
    topic: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str
    recorded_at: str


class Timeline(TypedDict):
    """All audit records of one asset, oldest first."""

    asset_id: str
    items: list[AuditRecord]


class BrokenRecord(TypedDict):
    """The first record whose hash chain does not verify."""

    seq: int
    event_id: str | None
    reason: str


class VerifyResult(TypedDict):
    """Answer of ``POST /v1/audit/verify``."""

    ok: bool
    records_checked: int
    first_broken: BrokenRecord | None


# --------------------------------------------------------------------------- labeling

ShapeKind = Literal["bbox", "polygon", "keypoints", "classification"]
AttributeType = Literal["enum", "bool", "text"]
DeliveryStatus = Literal["pending", "delivered", "failed"]


class OntologyAttribute(TypedDict):
    """An attribute of an ontology class; ``values`` only for enums."""

    name: str
    type: AttributeType
    values: list[str] | None
    required: bool


class OntologyClass(TypedDict):
    """A class of an ontology version; ``keypoints`` only for keypoints classes."""

    name: str
    shape: ShapeKind
    keypoints: list[str] | None
    attributes: list[OntologyAttribute]


class Ontology(TypedDict):
    """An ontology as listed: its name and latest version number."""

    id: str
    name: str
    latest_version: int
    created_by: str
    created_at: str


class OntologyVersion(TypedDict):
    """One immutable version of an ontology, its classes in full."""

    ontology_id: str
    name: str
    version: int
    classes: list[OntologyClass]
    created_by: str
    created_at: str


class OntologyVersionSummary(TypedDict):
    """A version in an ontology's history: its class names."""

    version: int
    classes: list[str]
    created_by: str
    created_at: str


class OntologyDetail(Ontology):
    """An ontology with its latest version in full and its history."""

    latest: OntologyVersion
    versions: list[OntologyVersionSummary]


class Vendor(TypedDict):
    """A labeling vendor (never its key or secret)."""

    id: str
    name: str
    kind: str
    url: str | None
    capacity: int
    batch_size: int
    enabled: bool
    created_by: str
    created_at: str


class LabelStudioProject(TypedDict):
    """Where one pass of a job is labeled in Label Studio."""

    vendor_id: str
    pass_no: int
    project_id: int
    project_url: str
    synced_until: str


class VendorWithCredentials(Vendor):
    """A vendor just registered, with its API key and HMAC secret (shown this once)."""

    api_key: str
    secret: str


class Delivery(TypedDict):
    """A task batch POSTed to a vendor, and its last try."""

    id: str
    vendor_id: str
    job_id: str
    task_count: int
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_latency_ms: float | None
    last_error: str | None
    next_attempt_at: str | None
    created_at: str
    delivered_at: str | None


class DeliveryAttempt(TypedDict):
    """One try of a delivery (``status_code`` None: no answer)."""

    attempt: int
    attempted_at: str
    status_code: int | None
    latency_ms: float
    error: str | None
    manual: bool


class DeliveryDetail(Delivery):
    """A delivery with its task ids and every try."""

    task_ids: list[str]
    attempt_log: list[DeliveryAttempt]


TaskState = Literal["queued", "assigned", "dispatched", "submitted", "rework", "cancelled"]


class Task(TypedDict):
    """One replica of one asset in a labeling job, and where it is."""

    id: str
    job_id: str
    asset_id: str
    replica: int
    gold: bool
    state: TaskState
    priority_score: float
    vendor_id: str | None
    excluded_vendors: list[str]
    attempt: int
    delivery_id: str | None
    lease_expires_at: str | None
    rework_comment: str | None
    created_at: str
    dispatched_at: str | None
    submitted_at: str | None
    updated_at: str


JobState = Literal["open", "paused", "cancelled", "completed"]
JobPriority = Literal["arrival", "uncertainty"]
JobAction = Literal["pause", "resume", "cancel"]


class JobProgress(TypedDict):
    """A job's task counts per state for one vendor (``vendor_id`` None: not assigned yet, or
    the job's total)."""

    vendor_id: str | None
    queued: int
    assigned: int
    dispatched: int
    submitted: int
    rework: int
    cancelled: int
    expired: int


class Job(TypedDict):
    """A labeling job: a dataset sent to vendors under one pinned ontology version."""

    id: str
    name: str
    dataset_id: str
    ontology_id: str
    ontology_version: int
    vendor_ids: list[str]
    overlap: int
    gold_ratio: float
    priority: str
    lease_seconds: int
    state: JobState
    regular_tasks: int
    gold_tasks: int
    created_by: str
    created_at: str
    updated_at: str


class JobDetail(Job):
    """A job with its progress per vendor and in total."""

    progress: list[JobProgress]
    total: JobProgress


# --------------------------------------------------------------------------- qc: reviews

ReviewState = Literal["waiting", "review", "accepted", "rejected", "rework"]


class Review(TypedDict):
    """Where one asset of one labeling job stands in QC."""

    job_id: str
    asset_id: str
    dataset_id: str
    state: ReviewState
    round: int
    reasons: list[str]
    agreement: float | None
    decided_by: str | None
    comment: str | None
    first_answer_at: str | None
    updated_at: str


class ReviewAnswer(TypedDict):
    """An annotation that counts now in a review, with the checks' findings."""

    id: str
    task_id: str
    replica: int
    vendor_id: str
    annotator_id: str
    version: int
    gold: bool
    shapes: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    gold_score: dict[str, Any] | None
    received_at: str


class ReviewTask(TypedDict):
    """One of the asset's tasks in the job."""

    id: str
    replica: int
    gold: bool


class ReviewDetail(Review):
    """A review with its consensus, proposed (or accepted) label set, answers and tasks."""

    consensus: dict[str, Any] | None
    label_set: list[dict[str, Any]] | None
    answers: list[ReviewAnswer]
    tasks: list[ReviewTask]


# --------------------------------------------------------------------------- qc: scorecards


class ScorecardFigure(TypedDict):
    """A scorecard figure and the number of facts it rests on (value null when none)."""

    value: float | None
    count: int


class ScorecardFigures(TypedDict):
    """A vendor's figures over a window (docs/qc.md says what each one counts)."""

    gold_f1: ScorecardFigure
    gold_precision: ScorecardFigure
    gold_recall: ScorecardFigure
    gold_mean_iou: ScorecardFigure
    gold_class_accuracy: ScorecardFigure
    agreement: ScorecardFigure
    acceptance_rate: ScorecardFigure
    rejection_rate: ScorecardFigure
    rework_rate: ScorecardFigure
    turnaround_p50_seconds: ScorecardFigure
    turnaround_p95_seconds: ScorecardFigure
    turnaround_mean_seconds: ScorecardFigure
    throughput_per_hour: ScorecardFigure
    active_hours: int
    expired_rate: ScorecardFigure


class ScorecardCounters(TypedDict):
    """The exact sums behind the figures (sums of real numbers as decimal strings)."""

    submitted: int
    lead_time_count: int
    lead_time_sum: str
    gold_count: int
    gold_true_positives: int
    gold_false_positives: int
    gold_false_negatives: int
    gold_iou_sum: str
    gold_iou_count: int
    gold_class_correct: int
    gold_class_total: int
    agreement_count: int
    agreement_sum: str
    accepted: int
    rejected: int
    rework: int
    expired: int


class Scorecard(TypedDict):
    """One vendor's scorecard over a window."""

    vendor_id: str
    figures: ScorecardFigures
    counters: ScorecardCounters


class ScorecardList(TypedDict):
    """Every vendor with anything counted in the window."""

    items: list[Scorecard]


class ScorecardDay(TypedDict):
    """A vendor's scorecard for one UTC day."""

    day: str
    figures: ScorecardFigures
    counters: ScorecardCounters


class VendorScorecard(Scorecard):
    """A vendor's scorecard over the window and its trend by day."""

    trend: list[ScorecardDay]


class DatasetVersion(TypedDict):
    """A frozen, numbered set of a dataset's accepted labels (QC)."""

    id: str
    dataset_id: str
    dataset: str
    number: int
    manifest_hash: str
    item_count: int
    shape_count: int
    left_out: int
    classes: list[str]
    created_by: str
    created_at: str


ExportState = Literal["queued", "running", "done", "failed"]


class DatasetExport(TypedDict):
    """An export of a dataset version: its progress, and its download URL once done."""

    id: str
    dataset_id: str
    version_id: str
    version: int
    format: str
    images: str
    state: ExportState
    done: int
    total: int
    attempts: int
    annotation_count: int | None
    sha256: str | None
    size: int | None
    error: str | None
    requested_by: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    download_url: str | None
    download_expires_at: str | None
