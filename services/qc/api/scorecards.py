"""Vendor scorecards: every vendor over a window, or one vendor with its day-by-day trend."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import date
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from services.qc.api.dependencies import QcDep, Viewer
from services.qc.domain.scorecards import Figures
from services.qc.use_cases import scorecards
from shared.errors import error_responses
from shared.http import IsoDateTime

router = APIRouter(tags=["scorecards"])


Time = IsoDateTime
JobParam = Annotated[uuid.UUID | None, Query(description="only this job")]
SinceParam = Annotated[
    Time | None, Query(description="from this time (counted by whole UTC hours)")
]
UntilParam = Annotated[Time | None, Query(description="up to this time (exclusive)")]


class CountersOut(BaseModel):
    """The exact sums the figures come from (sums of reals as decimal strings)."""

    submitted: int
    lead_time_count: int
    lead_time_sum: Decimal
    gold_count: int
    gold_true_positives: int
    gold_false_positives: int
    gold_false_negatives: int
    gold_iou_sum: Decimal
    gold_iou_count: int
    gold_class_correct: int
    gold_class_total: int
    agreement_count: int
    agreement_sum: Decimal
    accepted: int
    rejected: int
    rework: int
    expired: int


class ScorecardOut(BaseModel):
    """A vendor's scorecard over the window asked for: every figure is ``{"value", "count"}``
    (value null when count is 0); docs/qc.md says what each one counts."""

    vendor_id: uuid.UUID
    figures: Figures
    counters: CountersOut


class ScorecardList(BaseModel):
    """One scorecard per vendor with anything counted in the window, by vendor id."""

    items: list[ScorecardOut]


class DayOut(BaseModel):
    """A vendor's scorecard for one UTC day."""

    day: date
    figures: Figures
    counters: CountersOut


class VendorScorecardOut(ScorecardOut):
    """A vendor's scorecard over the window, and day by day (days with counters only)."""

    trend: list[DayOut]


def _card(card: scorecards.VendorCard | scorecards.DayCard) -> dict[str, object]:
    """A card's figures and its counters (the histogram stays inside)."""
    counters = asdict(card.counters)
    counters.pop("lead_time_buckets")
    return {"figures": card.figures, "counters": counters}


@router.get(
    "/v1/scorecards",
    summary="Every vendor's scorecard",
    responses=error_responses(400, 401, 403, 422),
)
async def list_scorecards(
    principal: Viewer,
    qc: QcDep,
    job_id: JobParam = None,
    since: SinceParam = None,
    until: UntilParam = None,
) -> ScorecardList:
    cards = await scorecards.scorecards(qc, principal, job_id, since, until)
    items = [ScorecardOut.model_validate({**_card(c), "vendor_id": c.vendor_id}) for c in cards]
    return ScorecardList(items=items)


@router.get(
    "/v1/vendors/{vendor_id}/scorecard",
    summary="A vendor's scorecard and its trend by day",
    responses=error_responses(400, 401, 403, 404, 422),
)
async def vendor_scorecard(
    vendor_id: uuid.UUID,
    principal: Viewer,
    qc: QcDep,
    job_id: JobParam = None,
    since: SinceParam = None,
    until: UntilParam = None,
) -> VendorScorecardOut:
    card, days = await scorecards.vendor_scorecard(qc, principal, vendor_id, job_id, since, until)
    trend = [DayOut.model_validate({**_card(d), "day": d.day}) for d in days]
    return VendorScorecardOut.model_validate(
        {**_card(card), "vendor_id": card.vendor_id, "trend": trend}
    )
