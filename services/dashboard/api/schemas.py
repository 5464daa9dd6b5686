"""The JSON the dashboard's API answers (and the page reads)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel


class Windowed(BaseModel):
    """The filter an answer was computed for."""

    dataset: str | None
    since: datetime | None
    until: datetime | None


class Stage(BaseModel):
    stage: str
    count: int
    meaning: str


class ReasonCount(BaseModel):
    code: str
    count: int


class Loss(BaseModel):
    """Assets lost at a stage: how many, their share of those that reached it, and why."""

    stage: str
    lost: int
    share: float
    reasons: list[ReasonCount]


class Funnel(Windowed):
    stages: list[Stage]
    losses: list[Loss]
    # assets not lost but not through yet: awaiting a verdict, a labeling job, rework answers
    waiting: dict[str, int]


class StagePoint(BaseModel):
    t: datetime
    events: int


class StageSeries(BaseModel):
    stage: str
    points: list[StagePoint]


class Throughput(Windowed):
    bucket_seconds: int
    series: list[StageSeries]


class LatencyPoint(BaseModel):
    t: datetime
    p50: float
    p95: float
    count: int


class LatencySeries(BaseModel):
    name: str
    points: list[LatencyPoint]


class Latency(Windowed):
    bucket_seconds: int
    series: list[LatencySeries]


class DatasetSummary(BaseModel):
    dataset_id: uuid.UUID
    slug: str
    name: str
    created_at: datetime | None
    assets: int


class DatasetList(BaseModel):
    items: list[DatasetSummary]


class AssetSummary(BaseModel):
    asset_id: uuid.UUID
    dataset_id: uuid.UUID | None
    dataset_slug: str | None
    filename: str | None
    sha256: str | None
    media_type: str | None
    size_bytes: int | None
    source: str | None
    uploaded_at: datetime | None
    verdict: str | None
    verdict_at: datetime | None
    decision: str | None
    trace_id: str | None


class AssetSearch(BaseModel):
    items: list[AssetSummary]


class Changes(BaseModel):
    """The page polls this and reloads its data when ``events_applied`` moves."""

    events_applied: int
    changed_at: datetime | None
