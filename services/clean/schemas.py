"""Response bodies of the clean API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from services.clean.models import QualityReport
from services.clean.policy import ALL_THRESHOLDS, KNOWN_CODES, Action, PolicyRules
from shared.events import AssetIngestedV1


class Finding(BaseModel):
    """One failed check: code, what it means, the measured value and the limit it crossed."""

    code: str
    message: str
    value: float | None
    threshold: float | None
    ranges: list[tuple[float, float]] = Field(
        default_factory=list,
        description="where in a video, as [start, end] seconds (the first 20; empty if unknown)",
    )


class SharedFootageOut(BaseModel):
    """Where a duplicate video shows the original's footage (seconds from each clip's start):
    ``start``-``end`` here are ``original_start``-``original_end`` there."""

    start: float
    end: float
    original_start: float
    original_end: float
    matched: int = Field(description="samples in the stretch that showed the same picture")
    compared: int = Field(description="samples in the stretch that could be compared")


class QualityReportOut(BaseModel):
    """Everything clean knows about one asset."""

    asset_id: uuid.UUID
    dataset_id: uuid.UUID
    media_type: str
    status: str = Field(description="cleaned | rejected")
    reasons: list[Finding] = Field(description="blocking findings (why it was rejected)")
    flags: list[Finding] = Field(description="non-blocking findings")
    metrics: dict[str, float]
    duplicate_of: uuid.UUID | None
    duplicate_kind: str | None
    duplicate_distance: int | None
    duplicate_overlap: SharedFootageOut | None = Field(
        default=None, description="a duplicate video's shared footage (video_duplicate)"
    )
    policy_version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_report(cls, report: QualityReport) -> QualityReportOut:
        """The API form of a stored report."""

        def findings(stored: list[dict[str, Any]]) -> list[Finding]:
            return [Finding.model_validate(f) for f in stored]

        return cls(
            asset_id=report.asset_id,
            dataset_id=report.dataset_id,
            media_type=report.media_type,
            status=report.status,
            reasons=findings(report.reasons),
            flags=findings(report.flags),
            metrics=report.metrics,
            duplicate_of=report.duplicate_of,
            duplicate_kind=report.duplicate_code,
            duplicate_distance=report.duplicate_distance,
            duplicate_overlap=report.duplicate_overlap,
            policy_version=report.policy_version,
            created_at=report.created_at,
            updated_at=report.updated_at,
        )


class CheckPolicy(BaseModel):
    """How one check is applied in a dataset."""

    action: Action
    metric: str | None = None
    threshold: float | None = None
    fails_when: str | None = None
    default_threshold: float | None = None


class PolicyOut(BaseModel):
    """A dataset's effective policy: every check, its action and its threshold."""

    dataset_slug: str
    version: int = Field(description="0 = never changed (all defaults)")
    near_duplicate_radius: int
    checks: dict[str, CheckPolicy]

    @classmethod
    def from_rules(cls, slug: str, version: int, rules: PolicyRules) -> PolicyOut:
        """Spell out a policy, defaults included."""
        thresholds = rules.threshold_set()
        checks = {}
        for code in sorted(KNOWN_CODES | set(ALL_THRESHOLDS)):
            t = thresholds.get(code)
            checks[code] = CheckPolicy(
                action=rules.action(code),
                metric=t.metric if t else None,
                threshold=t.limit if t else None,
                fails_when=t.fails_when if t else None,
                default_threshold=ALL_THRESHOLDS[code].limit if t else None,
            )
        return cls(
            dataset_slug=slug,
            version=version,
            near_duplicate_radius=rules.near_duplicate_radius,
            checks=checks,
        )


class Reevaluation(BaseModel):
    """What a policy change did to the dataset's existing assets."""

    policy_version: int
    assets_checked: int
    assets_changed: int = Field(description="assets whose verdict changed (an event each)")


class QualitySummary(BaseModel):
    """A dataset's quality at a glance."""

    dataset_slug: str
    assets: int
    cleaned: int
    rejected: int
    rejections_by_reason: dict[str, int]
    flags_by_reason: dict[str, int]
    metric_distributions: dict[str, dict[str, float]]


class DuplicateGroup(BaseModel):
    """An original (first arrived, kept) and its later copies."""

    original: str
    copies: list[dict[str, Any]] = Field(default_factory=list)


class DuplicateGroups(BaseModel):
    """Every duplicate group of a dataset."""

    dataset_slug: str
    groups: list[DuplicateGroup]


ReanalysisState = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class ReanalysisStart(BaseModel):
    """What a re-analysis does besides re-measuring."""

    rejudge: bool = Field(
        default=True,
        description="judge the new measurements under the dataset's current policy, as a policy"
        " change does: an asset whose verdict changes gets a new asset.cleaned / asset.rejected"
        " event. false: only the measurements are replaced; verdicts stay as stored",
    )


class ReanalysisFailure(BaseModel):
    """An asset a re-analysis could not re-measure (its stored report is left as it was)."""

    asset_id: uuid.UUID
    reason: str


class ReanalysisOut(BaseModel):
    """A re-analysis job and its progress."""

    id: uuid.UUID
    dataset_slug: str
    state: ReanalysisState
    rejudge: bool
    requested_by: str
    total: int = Field(description="reports stored when the job was started")
    done: int = Field(description="assets re-measured and stored")
    failed: int = Field(description="assets that could not be re-measured (see failures)")
    changed: int = Field(description="assets whose verdict changed (an event each)")
    remaining: int
    rate_per_second: float | None = Field(
        description="assets handled per second since the job (re)started in its process"
    )
    eta_seconds: float | None = Field(description="time left at that rate (running jobs)")
    failures: list[ReanalysisFailure] = Field(description="the first 100 failures")
    error: str | None = Field(description="why the job failed (state failed)")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime


class ReanalysisPage(BaseModel):
    """One page of a dataset's re-analyses, newest first; pass ``next_cursor`` back as
    ``cursor`` for the next one."""

    items: list[ReanalysisOut]
    next_cursor: str | None


class SourcesIn(BaseModel):
    """Stored sources for reports made before sources were kept: the asset.ingested payloads
    of the dataset's assets, as the audit trail holds them."""

    assets: list[AssetIngestedV1] = Field(min_length=1, max_length=500)


class SourcesStored(BaseModel):
    """What a backfill of stored sources did."""

    received: int
    stored: int = Field(description="reports that had no stored source and now have one")
    kept: int = Field(description="reports that had a stored source already (left as it was)")
    unknown: int = Field(
        description="payloads of assets with no quality report in this dataset (not stored)"
    )
