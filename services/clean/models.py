"""Clean's tables (schema ``clean``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.inbox import inbox_table
from shared.outbox import outbox_table

SCHEMA = "clean"


class Base(DeclarativeBase):
    """Tables of the ``clean`` schema."""

    metadata = MetaData(schema=SCHEMA)


class KnownDataset(Base):
    """Datasets as ingest announced them (slug -> id), so the API can take slugs."""

    __tablename__ = "datasets"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)


class Policy(Base):
    """A dataset's cleaning policy; absent means the defaults (version 0)."""

    __tablename__ = "policies"

    dataset_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    rules: Mapped[dict[str, Any]] = mapped_column(JSONB)
    updated_by: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class QualityReport(Base):
    """What the checks found on one asset, and the verdict under the dataset's policy."""

    __tablename__ = "quality_reports"

    asset_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    dataset_id: Mapped[uuid.UUID] = mapped_column(index=True)
    media_type: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    metrics: Mapped[dict[str, float]] = mapped_column(JSONB)
    structural: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    flags: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    pixel_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    phash: Mapped[int | None] = mapped_column(BigInteger)
    crop_hashes: Mapped[bytes | None] = mapped_column(LargeBinary)  # 18 big-endian pHashes
    duplicate_of: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    duplicate_code: Mapped[str | None] = mapped_column(String(32))
    duplicate_distance: Mapped[int | None] = mapped_column(SmallInteger)
    # a duplicate video's shared footage: policy.SharedFootage as JSON
    duplicate_overlap: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    policy_version: Mapped[int] = mapped_column(Integer)
    arrival: Mapped[int] = mapped_column(BigInteger, index=True)
    # the asset.ingested payload the report was made from: where to read the file again
    ingested: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Reanalysis(Base):
    """A job re-measuring a dataset's stored files; progress is checkpointed by arrival."""

    __tablename__ = "reanalyses"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    dataset_id: Mapped[uuid.UUID]
    dataset_slug: Mapped[str] = mapped_column(String(63))
    state: Mapped[str] = mapped_column(String(16))
    rejudge: Mapped[bool]
    requested_by: Mapped[str] = mapped_column(Text)
    total: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    last_arrival: Mapped[int] = mapped_column(BigInteger)  # reports up to here are handled
    until_arrival: Mapped[int] = mapped_column(BigInteger)  # the newest report at the start
    failures: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    processed_at_resume: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class ImageFeatures(Base):
    """Keypoints and thumbnail of a comparable image, read only to verify a near duplicate."""

    __tablename__ = "image_features"

    asset_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    dataset_id: Mapped[uuid.UUID]
    features: Mapped[bytes] = mapped_column(LargeBinary)  # checks.Features.packed()


class VideoSignatureRow(Base):
    """A video's fingerprint (``VideoSignature.pack``), compared with the dataset's later videos."""

    __tablename__ = "video_signatures"

    asset_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    dataset_id: Mapped[uuid.UUID]
    arrival: Mapped[int] = mapped_column(BigInteger)
    duration_seconds: Mapped[float]
    samples: Mapped[bytes] = mapped_column(LargeBinary)
    fine_blocks: Mapped[bytes | None] = mapped_column(LargeBinary)  # pack_fine(); 0008


outbox = outbox_table(Base.metadata)
inbox = inbox_table(Base.metadata)
