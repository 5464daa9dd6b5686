"""Re-analysis's pure parts: progress figures, the failure list, replacing measurements."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from conveyor_cli.quality import reanalysis_progress
from conveyor_cli.schemas import Reanalysis
from services.clean import repository as repo
from services.clean.checks import CheckResult
from services.clean.domain import Findings
from services.clean.models import QualityReport
from services.clean.use_cases.measuring import MissingObject
from services.clean.use_cases.reanalysis import (
    FAILURES_KEPT,
    failure_reason,
    kept_failures,
    progress,
    replace_measurements,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Job:
    state: str = "running"
    total: int = 100
    done: int = 0
    failed: int = 0
    resumed_at: datetime | None = T0
    processed_at_resume: int = 0
    finished_at: datetime | None = None


def test_a_queued_job_has_no_rate_or_eta_yet() -> None:
    figures = progress(Job(state="queued", resumed_at=None), T0)
    assert (figures.remaining, figures.rate_per_second, figures.eta_seconds) == (100, None, None)


def test_the_rate_counts_done_and_failed_since_the_start_and_gives_the_time_left() -> None:
    figures = progress(Job(done=15, failed=5), T0 + timedelta(seconds=10))
    assert figures.remaining == 80
    assert figures.rate_per_second == pytest.approx(2.0)
    assert figures.eta_seconds == pytest.approx(40.0)


def test_a_resumed_job_counts_only_the_work_since_it_resumed() -> None:
    # 60 handled before a crash; 20 more in the 5 s since the restart
    job = Job(done=78, failed=2, processed_at_resume=60)
    figures = progress(job, T0 + timedelta(seconds=5))
    assert figures.rate_per_second == pytest.approx(4.0)
    assert figures.eta_seconds == pytest.approx(5.0)


def test_a_finished_job_keeps_its_average_rate_and_has_no_eta() -> None:
    job = Job(state="succeeded", done=100, finished_at=T0 + timedelta(seconds=20))
    figures = progress(job, T0 + timedelta(hours=3))
    assert figures.rate_per_second == pytest.approx(5.0)
    assert (figures.remaining, figures.eta_seconds) == (0, None)


def test_no_rate_before_the_first_page_is_stored() -> None:
    assert progress(Job(), T0 + timedelta(seconds=3)).rate_per_second is None
    assert progress(Job(done=5), T0).rate_per_second is None  # no time has passed


def test_failures_are_listed_up_to_the_limit_then_only_counted() -> None:
    new = [(uuid.uuid4(), f"missing_object: {i}") for i in range(FAILURES_KEPT + 5)]
    listed = kept_failures([], new[:3])
    assert [f["reason"] for f in listed] == [
        "missing_object: 0",
        "missing_object: 1",
        "missing_object: 2",
    ]
    full = kept_failures(listed, new[3:])
    assert len(full) == FAILURES_KEPT and full[-1]["asset_id"] == str(new[FAILURES_KEPT - 1][0])
    assert kept_failures(full, new[:1]) == full


def test_a_missing_object_is_named_as_such_other_errors_by_type() -> None:
    assert failure_reason(MissingObject("s3://b/k does not exist")) == (
        "missing_object: s3://b/k does not exist"
    )
    assert failure_reason(OSError("connection reset")) == "OSError: connection reset"


def _stored(phash: int | None) -> QualityReport:
    return QualityReport(
        metrics={"old_metric": 1.0},
        structural=[],
        pixel_sha256="a" * 64,
        phash=None if phash is None else repo.to_signed(phash),
        crop_hashes=None if phash is None else repo.pack_crops([phash] * 18),
        status="cleaned",
        reasons=[],
        flags=[],
    )


def test_fresh_findings_replace_metrics_structure_and_hashes_but_not_the_verdict() -> None:
    report = _stored(phash=2**63 + 5)
    damaged = CheckResult("truncated", False, 10.0, 20.0, "cut short")
    crops = tuple(range(1, 19))
    findings = Findings(
        [damaged], {"sharpness": 0.4, "new_metric": 7.0}, "b" * 64, 2**63 + 5, crops
    )
    assert replace_measurements(report, findings)  # the crop hashes changed
    assert report.metrics == {"sharpness": 0.4, "new_metric": 7.0}
    assert report.structural[0]["code"] == "truncated"
    assert report.pixel_sha256 == "b" * 64
    assert report.phash == repo.to_signed(2**63 + 5)
    assert report.crop_hashes == repo.pack_crops(crops)
    assert (report.status, report.reasons) == ("cleaned", [])


def test_unchanged_hashes_are_reported_unchanged_and_an_unhashed_image_stays_unhashed() -> None:
    same = _stored(phash=42)
    assert not replace_measurements(same, Findings([], {}, "c" * 64, 42, (42,) * 18))
    bare = _stored(phash=None)
    assert not replace_measurements(bare, Findings([], {"m": 1.0}))
    assert (bare.phash, bare.crop_hashes, bare.pixel_sha256) == (None, None, None)
    lost = _stored(phash=42)
    assert replace_measurements(lost, Findings([], {}, None))  # no longer comparable
    assert (lost.phash, lost.crop_hashes) == (None, None)


def _job(**changes: object) -> Reanalysis:
    job: Reanalysis = {
        "id": "j",
        "dataset_slug": "cars",
        "state": "running",
        "rejudge": True,
        "requested_by": "alice",
        "total": 500,
        "done": 118,
        "failed": 2,
        "changed": 3,
        "remaining": 380,
        "rate_per_second": 14.23,
        "eta_seconds": 187.0,
        "failures": [],
        "error": None,
        "created_at": "2026-01-01T00:00:00Z",
        "started_at": "2026-01-01T00:00:01Z",
        "finished_at": None,
        "updated_at": "2026-01-01T00:00:09Z",
    }
    return cast(Reanalysis, {**job, **changes})


def test_the_cli_progress_line_says_handled_of_total_failures_rate_and_time_left() -> None:
    assert reanalysis_progress(_job()) == (
        "running: 120/500 (2 failed), 14.2 files/s, about 3 min 07 s left"
    )
    queued = _job(state="queued", done=0, failed=0, rate_per_second=None, eta_seconds=None)
    assert reanalysis_progress(queued) == "queued: 0/500"
    done = _job(state="succeeded", done=498, eta_seconds=None)
    assert reanalysis_progress(done) == "succeeded: 500/500 (2 failed), 14.2 files/s"
