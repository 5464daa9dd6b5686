"""The funnel's counters: what one asset counts for, and how a window splits into whole
counter hours and the partial hours at its edges.

An asset counts in the funnel under its dataset and upload hour with a few *marks*: ``stored``,
its clean verdict (``cleaned``, ``rejected`` or, without one yet, ``cleaning``), the labeling
stages it reached, QC's latest decision, and ``reason:<code>`` once per blocking reason of a
rejection. The projection keeps, per (dataset, hour, mark), how many assets carry the mark; the
funnel sums those rows instead of counting asset rows.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

HOUR = timedelta(hours=1)
REASON = "reason:"
# QC's decision -> the funnel stage it counts in
DECISION_MARKS = {"accepted": "accepted", "rework": "rework", "rejected": "qc_rejected"}
# every stage mark, so a funnel with no assets still has each stage (at 0)
STAGE_MARKS = (
    "stored",
    "cleaned",
    "rejected",
    "cleaning",
    "in_labeling",
    "dispatched",
    "submitted",
    "accepted",
    "rework",
    "qc_rejected",
)


@dataclass(frozen=True)
class Standing:
    """Where an asset counts: its dataset, its upload hour and its marks (sorted)."""

    dataset_id: uuid.UUID
    hour: datetime
    marks: tuple[str, ...]


def upload_hour(at: datetime) -> datetime:
    """The hour (UTC) an upload time falls in: the counters' bucket."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def standing(
    *,
    dataset_id: uuid.UUID | None,
    uploaded_at: datetime | None,
    verdict: str | None,
    reason_codes: Iterable[str],
    tasks: int,
    dispatched: bool,
    submissions: int,
    decision: str | None,
) -> Standing | None:
    """What an asset row counts for; None until its upload is known (the funnel counts
    assets by upload time)."""
    if dataset_id is None or uploaded_at is None:
        return None
    marks = ["stored"]
    if verdict is None:
        marks.append("cleaning")
    elif verdict in ("cleaned", "rejected"):
        marks.append(verdict)
    if verdict == "rejected":
        # an asset counts once under each of its blocking reasons
        marks.extend(REASON + code for code in set(reason_codes))
    if tasks > 0:
        marks.append("in_labeling")
    if dispatched:
        marks.append("dispatched")
    if submissions > 0:
        marks.append("submitted")
    if decision in DECISION_MARKS:
        marks.append(DECISION_MARKS[decision])
    return Standing(dataset_id, upload_hour(uploaded_at), tuple(sorted(marks)))


CounterKey = tuple[uuid.UUID, datetime, str]


def move(counts: Counter[CounterKey], was: Standing | None, now: Standing | None) -> None:
    """Add to ``counts`` what an asset going from ``was`` to ``now`` changes in the counters."""
    if was is not None:
        for mark in was.marks:
            counts[(was.dataset_id, was.hour, mark)] -= 1
    if now is not None:
        for mark in now.marks:
            counts[(now.dataset_id, now.hour, mark)] += 1


@dataclass(frozen=True)
class Split:
    """A window [since, until) as the whole counter hours [hours_from, hours_to) it covers
    (None: no whole hour) and the partial stretches at its edges, counted from asset rows."""

    hours: tuple[datetime | None, datetime | None] | None
    edges: tuple[tuple[datetime | None, datetime | None], ...]


def split_window(since: datetime | None, until: datetime | None) -> Split:
    """Cut a window (either end may be open) at whole hours."""
    first = None if since is None else _hour_from(since)
    last = None if until is None else upload_hour(until)
    if first is not None and last is not None and first >= last:
        # no whole hour inside: the window is one edge
        return Split(None, ((since, until),))
    edges: list[tuple[datetime | None, datetime | None]] = []
    if since is not None and first != since:
        edges.append((since, first))
    if until is not None and last != until:
        edges.append((last, until))
    return Split((first, last), tuple(edges))


def _hour_from(at: datetime) -> datetime:
    """The first whole hour starting at or after ``at``."""
    hour = upload_hour(at)
    return hour if hour == at else hour + HOUR


def stage_counts(marks: Mapping[str, int]) -> dict[str, int]:
    """The funnel's count per stage from counts per mark."""
    return {stage: int(marks.get(stage, 0)) for stage in STAGE_MARKS}


def reason_counts(marks: Mapping[str, int]) -> dict[str, int]:
    """Rejected assets per blocking reason from counts per mark."""
    return {
        mark.removeprefix(REASON): int(n)
        for mark, n in marks.items()
        if mark.startswith(REASON) and n
    }
