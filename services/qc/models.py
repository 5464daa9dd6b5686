"""QC's tables (schema ``qc``).

Mirrors of other services' facts are filled from their events (datasets and assets from
ingest and clean; ontology versions, jobs and tasks from labeling-dispatch); the rest is QC's
own: every annotation version it judged with its findings, each asset's review in a job, the
accepted labels of each asset, and each job's QC policy.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, Float, Integer, MetaData, String, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.inbox import inbox_table
from shared.outbox import outbox_table

SCHEMA = "qc"


class Base(DeclarativeBase):
    """Tables of the ``qc`` schema."""

    metadata = MetaData(schema=SCHEMA)


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)


def _now() -> Any:
    return func.now()


class KnownDataset(Base):
    """A dataset as ingest announced it."""

    __tablename__ = "datasets"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)


class KnownAsset(Base):
    """An asset as ingest and clean announced it: what an export needs."""

    __tablename__ = "assets"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    dataset_id: Mapped[uuid.UUID] = mapped_column(index=True)
    sha256: Mapped[str | None] = mapped_column(String(64))
    filename: Mapped[str | None] = mapped_column(Text)
    media_type: Mapped[str | None] = mapped_column(Text)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)


class OntologyVersion(Base):
    """An ontology version's class names, in order (export categories follow it)."""

    __tablename__ = "ontology_versions"

    ontology_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    classes: Mapped[list[str]] = mapped_column(ARRAY(Text))


class QcJob(Base):
    """A labeling job as QC needs it, with its QC policy (``policy``: only what was set)."""

    __tablename__ = "jobs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    dataset_id: Mapped[uuid.UUID] = mapped_column(index=True)
    ontology_id: Mapped[uuid.UUID] = mapped_column()
    ontology_version: Mapped[int] = mapped_column(Integer)
    overlap: Mapped[int] = mapped_column(Integer)
    policy: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class QcTask(Base):
    """A labeling task: which asset and replica, gold or not (with the known answer)."""

    __tablename__ = "tasks"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(index=True)
    asset_id: Mapped[uuid.UUID] = mapped_column(index=True)
    replica: Mapped[int] = mapped_column(Integer)
    gold: Mapped[bool] = mapped_column(Boolean, default=False)
    gold_shapes: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)


class JudgedAnnotation(Base):
    """One annotation version QC received, with its structural findings and, for a gold task,
    its score. ``live``: the newest version of its task, not withdrawn (the one that counts)."""

    __tablename__ = "annotations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    task_id: Mapped[uuid.UUID] = mapped_column(index=True)
    job_id: Mapped[uuid.UUID] = mapped_column(index=True)
    asset_id: Mapped[uuid.UUID] = mapped_column(index=True)
    dataset_id: Mapped[uuid.UUID] = mapped_column()
    vendor_id: Mapped[uuid.UUID] = mapped_column(index=True)
    annotator_id: Mapped[str] = mapped_column(Text)
    replica: Mapped[int] = mapped_column(Integer)
    gold: Mapped[bool] = mapped_column(Boolean)
    shapes: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    version: Mapped[int] = mapped_column(Integer, default=1)
    live: Mapped[bool] = mapped_column(Boolean, default=True)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    gold_score: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    lead_time_seconds: Mapped[float | None] = mapped_column(Float)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AssetReview(Base):
    """Where one asset of one job stands in QC.

    ``state``: ``waiting`` (replicas still to come), ``review`` (a person must decide),
    ``accepted``, ``rejected``, ``rework`` (sent back; its answers come through QC again).
    ``round`` counts rework rounds. ``consensus`` is the last comparison of its annotators.
    """

    __tablename__ = "reviews"

    job_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    asset_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    dataset_id: Mapped[uuid.UUID] = mapped_column(index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    round: Mapped[int] = mapped_column(Integer, default=0)
    reasons: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    agreement: Mapped[float | None] = mapped_column(Float)
    consensus: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    label_set: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    decided_by: Mapped[str | None] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    first_answer_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class AcceptedLabels(Base):
    """The labels of an asset as last accepted (what a dataset version freezes).

    One row per asset: a later acceptance (another job, a rework round) replaces the labels,
    and a dataset version made before keeps what it froze.
    """

    __tablename__ = "accepted_labels"

    asset_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    dataset_id: Mapped[uuid.UUID] = mapped_column(index=True)
    job_id: Mapped[uuid.UUID] = mapped_column()
    ontology_id: Mapped[uuid.UUID] = mapped_column()
    ontology_version: Mapped[int] = mapped_column(Integer)
    shapes: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    annotation_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)))
    accepted_by: Mapped[str] = mapped_column(Text)
    accepted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
