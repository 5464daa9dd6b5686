"""Scorecard counters: the turnaround histogram's buckets and percentiles, exact sums."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from services.qc.domain.ratios import Mean, Ratio
from services.qc.domain.scorecards import (
    BUCKETS,
    GROWTH,
    Tally,
    agreement_tally,
    bucket_upper_bound,
    figures,
    gold_tally,
    percentile,
    submitted_tally,
    turnaround_bucket,
)


@pytest.mark.parametrize("seconds", [0.0, 0.5, 1.0, 1.1, 59.9, 3600.0, 86400.0 * 3])
def test_a_lead_time_falls_in_the_bucket_whose_bound_is_at_most_one_step_above(
    seconds: float,
) -> None:
    bound = bucket_upper_bound(turnaround_bucket(seconds))
    assert seconds <= bound < max(seconds, 1.0) * GROWTH + 1e-9


def test_lead_times_beyond_the_last_bound_share_the_open_last_bucket() -> None:
    assert turnaround_bucket(1e12) == turnaround_bucket(1e15) == BUCKETS - 1
    assert turnaround_bucket(-5.0) == 0


def test_percentiles_are_nearest_rank_bucket_bounds() -> None:
    counts = [0] * BUCKETS
    for seconds in (10.0, 10.0, 10.0, 1000.0):
        counts[turnaround_bucket(seconds)] += 1
    assert percentile(counts, 0.5) == bucket_upper_bound(turnaround_bucket(10.0))
    assert percentile(counts, 0.95) == bucket_upper_bound(turnaround_bucket(1000.0))
    assert percentile([0] * BUCKETS, 0.5) is None


def test_sums_do_not_depend_on_the_order_facts_are_added_in() -> None:
    rng = random.Random(3)
    tallies = [submitted_tally(rng.lognormvariate(4, 2)) for _ in range(500)]
    tallies += [agreement_tally(rng.random()) for _ in range(500)]
    forwards = sum(tallies, Tally())
    rng.shuffle(tallies)
    assert sum(tallies, Tally()) == forwards
    assert isinstance(forwards.lead_time_sum, Decimal)


def test_each_figure_carries_the_count_it_rests_on() -> None:
    total = (
        gold_tally(3, 1, 0, Mean(2.7, 3), Ratio(3, 3))
        + gold_tally(0, 0, 2, Mean(0.0, 0), Ratio(0, 0))
        + submitted_tally(None)
        + submitted_tally(30.0)
    )
    card = figures(total, active_hours=2)
    assert (card.gold_f1.value, card.gold_f1.count) == (6 / 9, 2)
    assert card.gold_mean_iou.value == pytest.approx(0.9)
    assert card.gold_mean_iou.count == 3
    assert (card.throughput_per_hour.value, card.throughput_per_hour.count) == (1.0, 2)
    assert card.turnaround_mean_seconds.count == 1
    assert card.rework_rate.value is None and card.rework_rate.count == 0
