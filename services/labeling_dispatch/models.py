"""Labeling-dispatch's tables (schema ``labeling``).

Mirrors of other services' facts (``datasets``, ``assets``) are filled from their events; the
rest is owned here: ontologies, vendors, jobs, tasks and their assignments, predictions,
outbound deliveries and their attempts, inbound webhook receipts and annotations.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.inbox import inbox_table
from shared.outbox import outbox_table

SCHEMA = "labeling"


class Base(DeclarativeBase):
    """Tables of the ``labeling`` schema."""

    metadata = MetaData(schema=SCHEMA)


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)


def _now() -> Any:
    return func.now()


class KnownDataset(Base):
    """Datasets as ingest announced them (slug -> id), so the API can take slugs."""

    __tablename__ = "datasets"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)


class KnownAsset(Base):
    """An asset as ingest and clean described it: where its bytes are, its size, its verdict.

    ``state`` is ``ingested`` until clean's verdict arrives, then ``cleaned`` or ``rejected``
    (the two topics are read independently, so either event may come first; a row is created
    by whichever arrives first and completed by the other).
    """

    __tablename__ = "assets"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    dataset_id: Mapped[uuid.UUID] = mapped_column(index=True)
    sha256: Mapped[str | None] = mapped_column(String(64))
    media_type: Mapped[str | None] = mapped_column(Text)
    filename: Mapped[str | None] = mapped_column(Text)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="ingested")
    cleaned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # W3C trace context of the asset's upload, so labeling events join the upload's trace.
    traceparent: Mapped[str | None] = mapped_column(Text)


class Ontology(Base):
    """A named label schema; its content lives in immutable versions."""

    __tablename__ = "ontologies"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    latest_version: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class OntologyVersion(Base):
    """One version of an ontology; UPDATE and DELETE are refused by the database."""

    __tablename__ = "ontology_versions"

    ontology_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(f"{SCHEMA}.ontologies.id"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Vendor(Base):
    """Someone who labels: an HTTP webhook vendor, or (later) a Label Studio server.

    ``api_key_hash`` is the sha256 of the vendor's API key (the key is shown once).
    ``secret`` is the HMAC secret both directions are signed with; it has to be kept usable
    to sign and verify, so it is stored as given (protect the database accordingly).
    """

    __tablename__ = "vendors"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    url: Mapped[str | None] = mapped_column(Text)
    capacity: Mapped[int] = mapped_column(Integer)
    batch_size: Mapped[int] = mapped_column(Integer)
    # Vendor-kind specific settings (e.g. a Label Studio URL and token).
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    secret: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Job(Base):
    """A dataset's assets sent to vendors under one pinned ontology version."""

    __tablename__ = "jobs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(128))
    dataset_id: Mapped[uuid.UUID] = mapped_column(index=True)
    ontology_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{SCHEMA}.ontologies.id"))
    ontology_version: Mapped[int] = mapped_column(Integer)
    overlap: Mapped[int] = mapped_column(Integer, default=1)
    gold_ratio: Mapped[float] = mapped_column(Float, default=0.0)
    priority: Mapped[str] = mapped_column(String(16), default="arrival")
    lease_seconds: Mapped[int] = mapped_column(Integer)
    # open | paused | cancelled | completed
    state: Mapped[str] = mapped_column(String(16), default="open")
    # Running counts that decide when the next gold task is due.
    regular_tasks: Mapped[int] = mapped_column(Integer, default=0)
    gold_tasks: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class JobVendor(Base):
    """Which vendors work on a job."""

    __tablename__ = "job_vendors"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{SCHEMA}.jobs.id"), primary_key=True)
    vendor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(f"{SCHEMA}.vendors.id"), primary_key=True
    )


class GoldItem(Base):
    """A known-answer asset of a job's gold set, with its answer in canonical shapes."""

    __tablename__ = "gold_items"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{SCHEMA}.jobs.id"), primary_key=True)
    asset_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    shapes: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    # How many gold tasks were made from this item (the least used is drawn next).
    uses: Mapped[int] = mapped_column(Integer, default=0)


class Prediction(Base):
    """Pre-labels from a model outside Conveyor: shapes with scores, sent with the task."""

    __tablename__ = "predictions"

    asset_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    shapes: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    # Top score minus the second (1.0 with a single score): low means uncertain.
    margin: Mapped[float | None] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Task(Base):
    """One replica of one asset in one job, and where it is in its life.

    States: ``queued`` (waiting for a vendor) -> ``assigned`` (in a delivery not yet
    acknowledged) -> ``dispatched`` (acknowledged, lease running) -> ``submitted``; a lease
    that runs out sends it back to ``queued`` (a new assignment); ``rework`` sends a
    submitted task back to a vendor with a comment; ``cancelled`` when its job is.
    """

    __tablename__ = "tasks"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{SCHEMA}.jobs.id"), index=True)
    asset_id: Mapped[uuid.UUID] = mapped_column(index=True)
    replica: Mapped[int] = mapped_column(Integer)
    gold: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    # Lower is sent first: arrival order, or the prediction margin for `uncertainty` jobs.
    priority_score: Mapped[float] = mapped_column(Float)
    vendor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey(f"{SCHEMA}.vendors.id"))
    # Vendors this task must not go to (one holding another replica, one that let it expire).
    excluded_vendors: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(UUID(as_uuid=True)), default=list
    )
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    delivery_id: Mapped[uuid.UUID | None] = mapped_column()
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rework_comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class Assignment(Base):
    """One hand-over of a task to a vendor: a task expired and reassigned has several.

    ``outcome``: ``open`` while the vendor holds it, then ``answered``, ``expired``,
    ``failed`` (the delivery was given up) or ``cancelled``. A vendor may only see and
    answer tasks it has an assignment of; a late answer to an expired one is a 409.
    """

    __tablename__ = "assignments"

    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{SCHEMA}.tasks.id"), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    vendor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{SCHEMA}.vendors.id"), index=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(index=True)
    outcome: Mapped[str] = mapped_column(String(16), default="open")
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Delivery(Base):
    """A task batch POSTed to a vendor, retried on a schedule until acknowledged or given up.

    ``status``: ``pending`` (due at ``next_attempt_at``), ``delivered``, ``failed`` (given
    up or refused by the vendor). ``body`` is the exact JSON sent, so every retry and a
    manual redelivery send the same bytes under the same delivery id.
    """

    __tablename__ = "deliveries"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    vendor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{SCHEMA}.vendors.id"), index=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{SCHEMA}.jobs.id"), index=True)
    task_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_latency_ms: Mapped[float | None] = mapped_column(Float)
    traceparent: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DeliveryAttempt(Base):
    """One try at a delivery: when, the answer's status code, how long it took, the error."""

    __tablename__ = "delivery_attempts"

    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(f"{SCHEMA}.deliveries.id"), primary_key=True
    )
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    manual: Mapped[bool] = mapped_column(Boolean, default=False)


class WebhookReceipt(Base):
    """An inbound vendor delivery id, accepted once: a replay finds it here."""

    __tablename__ = "webhook_receipts"

    vendor_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    # What the first request was answered with, so a replay can say the same.
    response: Mapped[dict[str, Any]] = mapped_column(JSONB)


class Annotation(Base):
    """A vendor's answer to a task, as validated and stored (canonical pixel shapes)."""

    __tablename__ = "annotations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{SCHEMA}.tasks.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    vendor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{SCHEMA}.vendors.id"), index=True)
    annotator_id: Mapped[str] = mapped_column(Text)
    shapes: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    delivery_id: Mapped[str | None] = mapped_column(String(128))
    vendor_submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    lead_time_seconds: Mapped[float | None] = mapped_column(Float)
    # A vendor that can change an answer after submitting it (Label Studio) makes versions:
    # each change is a new row superseding the last, a deletion marks it withdrawn.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    vendor_ref: Mapped[str | None] = mapped_column(Text)
    supersedes: Mapped[uuid.UUID | None] = mapped_column()
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LabelStudioProject(Base):
    """The Label Studio project a ``label_studio`` vendor labels one pass of a job in.

    ``pass_no`` is the task's replica: replicas of one asset land in different projects, so
    different people label them. ``synced_until`` is the reconcile cursor (the newest task
    ``updated_at`` read back from Label Studio).
    """

    __tablename__ = "label_studio_projects"

    vendor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(f"{SCHEMA}.vendors.id"), primary_key=True
    )
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{SCHEMA}.jobs.id"), primary_key=True)
    pass_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(Integer)
    webhook_id: Mapped[int | None] = mapped_column(Integer)
    synced_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class RefusedRequest(Base):
    """An inbound vendor request refused (forged, expired, replayed, late, invalid, too big).

    Kept per task so people can see why a vendor's answer did not count.
    """

    __tablename__ = "refused_requests"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    vendor_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    task_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    delivery_id: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(32))
    status_code: Mapped[int] = mapped_column(Integer)
    problems: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
