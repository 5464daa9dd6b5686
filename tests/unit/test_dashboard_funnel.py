"""The funnel counters' pure parts: what an asset counts for, how a change moves the
counters, and how a window splits into whole counter hours and edges."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from services.dashboard.domain.funnel import (
    CounterKey,
    Split,
    Standing,
    move,
    reason_counts,
    split_window,
    stage_counts,
    standing,
    upload_hour,
)

D = uuid.uuid4()
H10 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def asset(**changes: Any) -> Standing | None:
    row: dict[str, Any] = {
        "dataset_id": D,
        "uploaded_at": H10 + timedelta(minutes=42),
        "verdict": None,
        "reason_codes": (),
        "tasks": 0,
        "dispatched": False,
        "submissions": 0,
        "decision": None,
    }
    return standing(**{**row, **changes})


def test_an_asset_counts_under_its_dataset_and_upload_hour_once_its_upload_is_known() -> None:
    assert asset() == Standing(D, H10, ("cleaning", "stored"))
    assert asset(uploaded_at=None, verdict="cleaned") is None
    assert asset(dataset_id=None) is None
    # an upload time in another zone falls in its UTC hour
    plus2 = datetime(2026, 12, 1, 12, 59, 59, tzinfo=timezone(timedelta(hours=2)))
    assert upload_hour(plus2) == H10


def test_a_rejection_counts_once_under_each_of_its_reasons() -> None:
    rejected = asset(verdict="rejected", reason_codes=["dark", "blurry", "dark"])
    assert rejected is not None
    assert rejected.marks == ("reason:blurry", "reason:dark", "rejected", "stored")
    # the reasons of a verdict that is not a rejection count nowhere
    cleaned = asset(verdict="cleaned", reason_codes=["dark"])
    assert cleaned is not None and cleaned.marks == ("cleaned", "stored")


def test_labeling_and_qc_stages_follow_the_row() -> None:
    labeled = asset(verdict="cleaned", tasks=2, dispatched=True, submissions=1, decision="rejected")
    assert labeled is not None
    assert set(labeled.marks) == {
        "stored",
        "cleaned",
        "in_labeling",
        "dispatched",
        "submitted",
        "qc_rejected",
    }
    reworked = asset(verdict="cleaned", tasks=1, decision="rework")
    assert reworked is not None and "rework" in reworked.marks


def test_a_move_takes_the_old_standing_off_and_puts_the_new_one_on() -> None:
    counts: Counter[CounterKey] = Counter()
    ingested, rejected = asset(), asset(verdict="rejected", reason_codes=["dark"])
    move(counts, None, ingested)
    move(counts, ingested, rejected)
    assert {k: n for k, n in counts.items() if n} == {
        (D, H10, "stored"): 1,
        (D, H10, "rejected"): 1,
        (D, H10, "reason:dark"): 1,
    }
    assert counts[(D, H10, "cleaning")] == 0
    # an upload time corrected into another hour moves every mark
    later = asset(uploaded_at=H10 + timedelta(hours=1, minutes=5))
    move(counts, rejected, later)
    assert {k: n for k, n in counts.items() if n} == {
        (D, H10 + timedelta(hours=1), "stored"): 1,
        (D, H10 + timedelta(hours=1), "cleaning"): 1,
    }


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        (None, None, Split((None, None), ())),
        (H10, H10 + timedelta(hours=3), Split((H10, H10 + timedelta(hours=3)), ())),
        (
            H10 + timedelta(minutes=5),
            None,
            Split(
                (H10 + timedelta(hours=1), None),
                ((H10 + timedelta(minutes=5), H10 + timedelta(hours=1)),),
            ),
        ),
        (
            H10 + timedelta(minutes=5),
            H10 + timedelta(hours=2, minutes=30),
            Split(
                (H10 + timedelta(hours=1), H10 + timedelta(hours=2)),
                (
                    (H10 + timedelta(minutes=5), H10 + timedelta(hours=1)),
                    (H10 + timedelta(hours=2), H10 + timedelta(hours=2, minutes=30)),
                ),
            ),
        ),
        (
            None,
            H10 + timedelta(seconds=1),
            Split((None, H10), ((H10, H10 + timedelta(seconds=1)),)),
        ),
        # no whole hour inside: the window is all edge
        (
            H10 + timedelta(minutes=5),
            H10 + timedelta(minutes=50),
            Split(None, ((H10 + timedelta(minutes=5), H10 + timedelta(minutes=50)),)),
        ),
        (
            H10 + timedelta(minutes=5),
            H10 + timedelta(hours=1, minutes=2),
            Split(None, ((H10 + timedelta(minutes=5), H10 + timedelta(hours=1, minutes=2)),)),
        ),
    ],
)
def test_a_window_splits_into_whole_hours_and_its_edges(
    since: datetime | None, until: datetime | None, expected: Split
) -> None:
    assert split_window(since, until) == expected


def test_stage_and_reason_counts_come_from_the_marks() -> None:
    marks = {"stored": 5, "cleaned": 3, "rejected": 2, "reason:dark": 2, "reason:blurry": 0}
    stages = stage_counts(marks)
    assert stages["stored"] == 5 and stages["cleaning"] == 0 and stages["accepted"] == 0
    assert reason_counts(marks) == {"dark": 2}
