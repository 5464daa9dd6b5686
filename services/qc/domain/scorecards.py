"""Vendor scorecards as sums of counters, so they can be added up as facts arrive.

A scorecard never rescans annotations: each fact (an answer submitted, a gold answer scored,
an asset's consensus, a decision, an expired lease) adds a :class:`Tally` to the counters of
its vendor, job and hour, and a scorecard for any window is the sum of the hours in it.

Two choices keep that sum exact and independent of the order facts arrive in:

- Sums of real numbers (lead times, IoUs, agreements) are fixed-point :class:`Decimal` with
  :data:`SCALE` places, each fact rounded once when it is counted. Adding fixed-point numbers
  is associative, unlike adding floats, so counting in pieces equals counting at once.
- Turnaround percentiles come from a fixed log-scale histogram (:data:`BUCKETS` buckets, each
  :data:`GROWTH` times wider than the last), so they are sums too. A percentile is the upper
  bound of the bucket it falls in: at most about 19% above the true value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal, localcontext
from typing import Literal

from services.qc.domain.ratios import Mean, Ratio

# Fixed-point places of every sum (nanoseconds for lead times).
SCALE = Decimal("1e-9")
_PRECISION = 60

# Bucket 0 holds lead times under 1 s; bucket k >= 1 holds [GROWTH**(k-1), GROWTH**k); the
# last one everything from GROWTH**(BUCKETS-2) (about 160 days) up.
GROWTH = 2**0.25
BUCKETS = 97


def fixed(value: float) -> Decimal:
    """``value`` as it is added to a sum: rounded to :data:`SCALE`."""
    with localcontext(prec=_PRECISION):
        return Decimal(value).quantize(SCALE)


def turnaround_bucket(seconds: float) -> int:
    """The histogram bucket of a lead time (negative ones count as 0 s)."""
    if seconds < 1:
        return 0
    return min(BUCKETS - 1, math.floor(math.log(seconds, GROWTH)) + 1)


def bucket_upper_bound(bucket: int) -> float:
    """The largest lead time a bucket can hold (the last one's lower bound: it is open)."""
    return GROWTH ** min(bucket, BUCKETS - 2)


def percentile(buckets: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (nearest rank) of a histogram, as its bucket's upper bound."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for bucket, count in enumerate(buckets):
        seen += count
        if seen >= rank:
            return bucket_upper_bound(bucket)
    raise AssertionError("unreachable: the ranks add up to the total")


def _no_buckets() -> tuple[int, ...]:
    return (0,) * BUCKETS


@dataclass(frozen=True)
class Tally:
    """Counters one or more facts add to a vendor's hour in a job (every field a sum)."""

    submitted: int = 0
    lead_time_count: int = 0
    lead_time_sum: Decimal = Decimal(0)
    lead_time_buckets: tuple[int, ...] = field(default_factory=_no_buckets)
    gold_count: int = 0
    gold_true_positives: int = 0
    gold_false_positives: int = 0
    gold_false_negatives: int = 0
    gold_iou_sum: Decimal = Decimal(0)
    gold_iou_count: int = 0
    gold_class_correct: int = 0
    gold_class_total: int = 0
    agreement_count: int = 0
    agreement_sum: Decimal = Decimal(0)
    accepted: int = 0
    rejected: int = 0
    rework: int = 0
    expired: int = 0

    def __add__(self, other: Tally) -> Tally:
        values: dict[str, object] = {}
        with localcontext(prec=_PRECISION):
            for f in fields(self):
                mine, theirs = getattr(self, f.name), getattr(other, f.name)
                if isinstance(mine, tuple):
                    values[f.name] = tuple(a + b for a, b in zip(mine, theirs, strict=True))
                else:
                    values[f.name] = mine + theirs
        return replace(self, **values)  # type: ignore[arg-type]


def submitted_tally(lead_time_seconds: float | None) -> Tally:
    """One answer in; its lead time (dispatched -> submitted) when labeling knew it."""
    if lead_time_seconds is None or not math.isfinite(lead_time_seconds):
        return Tally(submitted=1)
    seconds = max(0.0, lead_time_seconds)
    buckets = [0] * BUCKETS
    buckets[turnaround_bucket(seconds)] = 1
    return Tally(
        submitted=1,
        lead_time_count=1,
        lead_time_sum=fixed(seconds),
        lead_time_buckets=tuple(buckets),
    )


def gold_tally(
    true_positives: int,
    false_positives: int,
    false_negatives: int,
    iou: Mean,
    class_accuracy: Ratio,
) -> Tally:
    """One gold answer scored (the parts of a ``GoldScore``)."""
    return Tally(
        gold_count=1,
        gold_true_positives=true_positives,
        gold_false_positives=false_positives,
        gold_false_negatives=false_negatives,
        gold_iou_sum=fixed(iou.total),
        gold_iou_count=iou.count,
        gold_class_correct=class_accuracy.numerator,
        gold_class_total=class_accuracy.denominator,
    )


def agreement_tally(agreement: float) -> Tally:
    """One answer compared with the other annotators of its asset."""
    return Tally(agreement_count=1, agreement_sum=fixed(agreement))


Decision = Literal["accepted", "rejected", "rework"]


def decision_tally(kind: Decision) -> Tally:
    """One answer decided on: accepted, rejected or sent back for rework."""
    return Tally(
        accepted=int(kind == "accepted"),
        rejected=int(kind == "rejected"),
        rework=int(kind == "rework"),
    )


@dataclass(frozen=True)
class Figure:
    """A scorecard figure and the number of facts it rests on (``value`` None when none)."""

    value: float | None
    count: int


@dataclass(frozen=True)
class Figures:
    """A vendor's scorecard over some window, computed from the summed counters."""

    gold_f1: Figure
    gold_precision: Figure
    gold_recall: Figure
    gold_mean_iou: Figure
    gold_class_accuracy: Figure
    agreement: Figure
    acceptance_rate: Figure
    rejection_rate: Figure
    rework_rate: Figure
    turnaround_p50_seconds: Figure
    turnaround_p95_seconds: Figure
    turnaround_mean_seconds: Figure
    throughput_per_hour: Figure
    active_hours: int
    expired_rate: Figure


def figures(total: Tally, active_hours: int) -> Figures:
    """The scorecard of summed counters; ``active_hours``: hours with at least one answer.

    Gold precision, recall and F1 pool the true/false positives of every gold answer (their
    count is the number of gold answers); mean IoU is over matched shapes; class accuracy over
    the objects found; rates are shares of the decisions on the vendor's answers; throughput
    is answers per hour in which the vendor answered at all; the expired rate is expired
    leases over expired leases and answers.
    """
    tp, fp, fn = total.gold_true_positives, total.gold_false_positives, total.gold_false_negatives
    gold = total.gold_count
    decided = total.accepted + total.rejected + total.rework
    timed = total.lead_time_count
    return Figures(
        gold_f1=_share(2 * tp, 2 * tp + fp + fn, gold),
        gold_precision=_share(tp, tp + fp, gold),
        gold_recall=_share(tp, tp + fn, gold),
        gold_mean_iou=_mean(total.gold_iou_sum, total.gold_iou_count),
        gold_class_accuracy=_share(
            total.gold_class_correct, total.gold_class_total, total.gold_class_total
        ),
        agreement=_mean(total.agreement_sum, total.agreement_count),
        acceptance_rate=_share(total.accepted, decided, decided),
        rejection_rate=_share(total.rejected, decided, decided),
        rework_rate=_share(total.rework, decided, decided),
        turnaround_p50_seconds=Figure(percentile(total.lead_time_buckets, 0.5), timed),
        turnaround_p95_seconds=Figure(percentile(total.lead_time_buckets, 0.95), timed),
        turnaround_mean_seconds=_mean(total.lead_time_sum, timed),
        throughput_per_hour=Figure(
            total.submitted / active_hours if active_hours else None, total.submitted
        ),
        active_hours=active_hours,
        expired_rate=_share(
            total.expired, total.expired + total.submitted, total.expired + total.submitted
        ),
    )


def _share(numerator: int, denominator: int, count: int) -> Figure:
    return Figure(Ratio(numerator, denominator).value, count)


def _mean(total: Decimal, count: int) -> Figure:
    return Figure(float(total / count) if count else None, count)
