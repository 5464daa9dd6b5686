"""The JSON of the cleaning and asset pages' API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from services.dashboard.api.schemas import AssetSummary, Windowed


class ReasonTotal(BaseModel):
    kind: str = Field(description="rejected (a blocking reason) | flagged (a flag)")
    code: str
    count: int


class ReasonPoint(BaseModel):
    t: datetime
    count: int


class ReasonSeries(BaseModel):
    kind: str
    code: str
    points: list[ReasonPoint]


class Reasons(Windowed):
    """Findings by verdict time: an asset counts once under each of its reasons or flags."""

    bucket_seconds: int
    totals: list[ReasonTotal]
    series: list[ReasonSeries]


class Finding(BaseModel):
    code: str
    message: str | None = None
    value: float | None = None
    threshold: float | None = None


class RejectedAsset(BaseModel):
    asset_id: uuid.UUID
    dataset_slug: str | None
    filename: str | None
    media_type: str | None
    verdict_at: datetime
    reasons: list[Finding]
    thumbnail_url: str


class RejectedPage(BaseModel):
    """Rejected assets, newest verdict first; pass ``next_cursor`` back as ``cursor``."""

    items: list[RejectedAsset]
    next_cursor: str | None


class Bin(BaseModel):
    low: float
    high: float
    count: int


class MetricHistogram(BaseModel):
    metric: str
    count: int
    min: float
    max: float
    bins: list[Bin]


class Histograms(Windowed):
    metrics: list[MetricHistogram]


class DuplicateOriginal(BaseModel):
    asset_id: uuid.UUID
    filename: str | None
    thumbnail_url: str


class DuplicateCopy(BaseModel):
    asset_id: uuid.UUID
    filename: str | None
    code: str | None = Field(description="exact_duplicate | near_duplicate")
    distance: int | None = Field(description="Hamming distance of the perceptual hashes")
    thumbnail_url: str


class DuplicateGroup(BaseModel):
    original: DuplicateOriginal
    copies: list[DuplicateCopy]


class Duplicates(BaseModel):
    dataset: str
    groups: list[DuplicateGroup]
    error: str | None = Field(default=None, description="why clean could not be asked")


class TimelineEntry(BaseModel):
    seq: int | None
    time: datetime | None
    type: str | None
    actor: str | None
    source: str | None = Field(description="the service that recorded the event")
    subject: str | None
    event_id: str | None
    topic: str | None
    trace_id: str | None = None


class Trace(BaseModel):
    trace_id: str | None
    url: str | None


class AssetPage(BaseModel):
    """One asset: the projection's summary and each service's detail (null when that service
    failed: ``problems`` says which)."""

    asset: AssetSummary
    metadata: dict[str, Any] | None
    quality: dict[str, Any] | None
    timeline: list[TimelineEntry] | None
    chain: dict[str, Any] | None
    trace: Trace
    thumbnail_url: str
    problems: list[str]
