"""Vendor scorecards, kept up to date as facts arrive (never by rescanning answers).

Each fact adds to its vendor's counters for the job and the hour it happened in, inside the
unit of work that records the fact itself: the judging of an answer, a decision, an expired
lease claimed from the inbox. So a fact is counted exactly once, whatever is redelivered.
Where to call what:

- :func:`count_submitted` when an answer is first judged (lead time from labeling's event);
- :func:`count_gold` when a gold answer is scored;
- :func:`count_agreement` when an asset's annotators are compared (consensus);
- :func:`count_decision` from ``decisions.accept`` / ``reject`` / ``send_back``;
- :func:`count_expired` for labeling's ``task.expired`` (routed to :func:`record_expired`).

A scorecard sums the hours of a window (:mod:`services.qc.domain.scorecards`).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from services.qc.context import Qc
from services.qc.domain.gold import GoldScore
from services.qc.domain.scorecards import (
    Decision,
    Figures,
    Tally,
    agreement_tally,
    decision_tally,
    figures,
    gold_tally,
    submitted_tally,
)
from services.qc.repository import scorecards as repo
from services.qc.repository.scorecards import HourKey, Window
from shared.auth import Principal
from shared.errors import ApiError
from shared.events import TaskExpiredV1
from shared.routing import Event
from shared.uow import UnitOfWork


@dataclass(frozen=True)
class Counted:
    """A fact's counters, and whose hour in which job they belong to."""

    vendor_id: uuid.UUID
    job_id: uuid.UUID
    at: datetime
    tally: Tally


DEFERRED = "scorecard tallies"


def hour_of(at: datetime) -> datetime:
    """The UTC hour a fact is counted in (a naive time is taken as UTC)."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return aware.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


async def count(uow: UnitOfWork, facts: Iterable[Counted]) -> None:
    """Add facts to their vendors' counters when the unit of work commits: every fact of the
    unit of work (a run of answers) in one statement, written last, so the counter rows every
    answer of a vendor shares stay locked for the commit only."""
    merged: dict[HourKey, Tally] | None = uow.deferred.get(DEFERRED)
    if merged is None:
        merged = uow.deferred[DEFERRED] = defaultdict(Tally)
        uow.before_commit(lambda: repo.add_tallies(uow.session, merged))
    for fact in facts:
        key = (fact.vendor_id, fact.job_id, hour_of(fact.at))
        merged[key] = merged[key] + fact.tally


async def count_submitted(
    uow: UnitOfWork,
    vendor_id: uuid.UUID,
    job_id: uuid.UUID,
    at: datetime,
    lead_time_seconds: float | None,
) -> None:
    """An answer received at ``at``; lead time: dispatched -> submitted (None if unknown)."""
    await count(uow, [Counted(vendor_id, job_id, at, submitted_tally(lead_time_seconds))])


async def count_gold(
    uow: UnitOfWork, vendor_id: uuid.UUID, job_id: uuid.UUID, at: datetime, score: GoldScore
) -> None:
    """A gold answer scored against the known answer."""
    tally = gold_tally(
        score.true_positives,
        score.false_positives,
        score.false_negatives,
        score.iou,
        score.class_accuracy,
    )
    await count(uow, [Counted(vendor_id, job_id, at, tally)])


async def count_agreement(
    uow: UnitOfWork,
    job_id: uuid.UUID,
    at: datetime,
    agreements: Sequence[tuple[uuid.UUID, float]],
) -> None:
    """An asset's consensus: (vendor id, agreement) per compared answer, e.g. the asset's
    agreement for each annotator's vendor (a vendor with two replicas counts twice)."""
    await count(
        uow, [Counted(vendor, job_id, at, agreement_tally(value)) for vendor, value in agreements]
    )


async def count_decision(
    uow: UnitOfWork,
    job_id: uuid.UUID,
    kind: Decision,
    at: datetime,
    *,
    annotation_ids: Sequence[uuid.UUID] = (),
    task_ids: Sequence[uuid.UUID] = (),
) -> None:
    """A decision on an asset's answers, counted once per answer for the vendor who gave it:
    the answers named by ``annotation_ids``, or the live answers of ``task_ids`` (rework)."""
    vendors = await repo.vendors_of_annotations(uow.session, annotation_ids)
    vendors += await repo.vendors_of_tasks(uow.session, task_ids)
    one = decision_tally(kind)
    await count(uow, [Counted(vendor, job_id, at, one) for vendor in vendors])


async def count_expired(
    uow: UnitOfWork, vendor_id: uuid.UUID, job_id: uuid.UUID, at: datetime
) -> None:
    """A vendor's lease on a task ran out before it answered."""
    await count(uow, [Counted(vendor_id, job_id, at, Tally(expired=1))])


async def record_expired(qc: Qc, events: Sequence[Event[TaskExpiredV1]]) -> None:
    """Labeling's expired leases, counted against their vendors (at the event's time)."""
    async with qc.units.begin() as uow:
        claimed = await uow.claim_all([e.envelope for e in events])
        expired = Tally(expired=1)
        await count(
            uow,
            [
                Counted(e.payload.vendor_id, e.payload.job_id, e.envelope.time, expired)
                for e in events
                if e.id in claimed
            ],
        )


# Reading scorecards ------------------------------------------------------------------


@dataclass(frozen=True)
class VendorCard:
    """A vendor's scorecard over a window: the figures and the counters they come from."""

    vendor_id: uuid.UUID
    figures: Figures
    counters: Tally


@dataclass(frozen=True)
class DayCard:
    """A vendor's scorecard for one UTC day."""

    day: date
    figures: Figures
    counters: Tally


async def scorecards(
    qc: Qc,
    principal: Principal,
    job_id: uuid.UUID | None,
    since: datetime | None,
    until: datetime | None,
) -> list[VendorCard]:
    """One scorecard per vendor with counters in the window (and the caller's datasets)."""
    window = _window(principal, job_id, None, since, until)
    async with qc.units.read() as session:
        totals = await repo.totals_by_vendor(session, window)
    return [VendorCard(v, figures(t, hours), t) for v, (t, hours) in totals.items()]


async def vendor_scorecard(
    qc: Qc,
    principal: Principal,
    vendor_id: uuid.UUID,
    job_id: uuid.UUID | None,
    since: datetime | None,
    until: datetime | None,
) -> tuple[VendorCard, list[DayCard]]:
    """A vendor's scorecard over the window and day by day; 404 if nothing was ever counted
    about the vendor."""
    window = _window(principal, job_id, vendor_id, since, until)
    async with qc.units.read() as session:
        if not await repo.has_counters(session, vendor_id):
            raise ApiError(404, "vendor_not_found", f"no scorecard for vendor {vendor_id}")
        totals = await repo.totals_by_vendor(session, window)
        days = await repo.totals_by_day(session, window)
    total, hours = totals.get(vendor_id, (Tally(), 0))
    trend = [DayCard(day, figures(t, h), t) for day, (t, h) in days.items()]
    return VendorCard(vendor_id, figures(total, hours), total), trend


def _window(
    principal: Principal,
    job_id: uuid.UUID | None,
    vendor_id: uuid.UUID | None,
    since: datetime | None,
    until: datetime | None,
) -> Window:
    since, until = _utc(since), _utc(until)
    if since is not None and until is not None and since >= until:
        raise ApiError(
            400,
            "invalid_window",
            "since must be before until",
            {"since": since.isoformat(), "until": until.isoformat()},
        )
    datasets = None
    if principal.datasets is not None:
        datasets = [uuid.UUID(d) for d in principal.datasets]
    return Window(job_id, vendor_id, since, until, datasets)


def _utc(at: datetime | None) -> datetime | None:
    if at is None:
        return None
    try:
        return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError as exc:
        raise ApiError(400, "invalid_window", f"{at.isoformat()} is out of range") from exc
