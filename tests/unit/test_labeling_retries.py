"""The outbound retry schedule and which vendor answers are retried."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from services.labeling_dispatch.domain.retries import (
    RetrySchedule,
    delivered,
    retry_after_seconds,
    retryable,
)
from services.labeling_dispatch.settings import LabelingSettings

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
DEFAULT = RetrySchedule.from_settings(LabelingSettings())
SECONDS = RetrySchedule(first_delay=0.2, max_delay=1.0, horizon=4.0, jitter=0.2)


def test_default_schedule_reaches_about_a_day_then_gives_up() -> None:
    offsets = DEFAULT.planned()
    for attempt, offset in enumerate(offsets, start=1):
        print(f"| {attempt} | {timedelta(seconds=round(offset))} |")
    assert offsets[0] == 0
    assert offsets[1] == 10
    assert 20 * 3600 <= offsets[-1] <= 24 * 3600
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert gaps == sorted(gaps), "delays never shrink"
    assert max(gaps) == DEFAULT.max_delay


def test_delays_double_from_the_first_up_to_the_maximum() -> None:
    assert [SECONDS.delay(n) for n in range(1, 6)] == [0.2, 0.4, 0.8, 1.0, 1.0]
    assert DEFAULT.delay(1000) == DEFAULT.max_delay


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999999])
def test_jitter_moves_a_delay_by_at_most_its_share(draw: float) -> None:
    due = DEFAULT.next_attempt(3, T0, T0, draw=lambda: draw)
    assert due is not None
    wait = (due - T0).total_seconds()
    assert 40 * 0.8 <= wait <= 40 * 1.2
    if draw == 0.5:
        assert wait == pytest.approx(40)


def test_no_jitter_means_the_exact_delay() -> None:
    schedule = RetrySchedule(first_delay=5, max_delay=60, horizon=600, jitter=0)
    assert schedule.next_attempt(2, T0, T0, draw=lambda: 0.9) == T0 + timedelta(seconds=10)


def test_a_try_past_the_horizon_is_given_up() -> None:
    first = T0
    late = T0 + timedelta(seconds=3.5)
    assert SECONDS.next_attempt(6, first, late, draw=lambda: 0.5) is None
    assert SECONDS.next_attempt(1, first, T0, draw=lambda: 0.5) is not None


def test_the_seconds_schedule_of_the_tests_gives_up_within_its_horizon() -> None:
    offsets = SECONDS.planned()
    assert offsets[:4] == pytest.approx([0, 0.2, 0.6, 1.4])
    assert offsets[-1] <= 4.0
    assert len(offsets) == 6


def test_retry_after_replaces_the_delay_within_the_maximum() -> None:
    assert DEFAULT.next_attempt(1, T0, T0, retry_after=120) == T0 + timedelta(seconds=120)
    bounded = SECONDS.next_attempt(1, T0, T0, retry_after=3600)
    assert bounded == T0 + timedelta(seconds=SECONDS.max_delay)


def test_retry_after_is_read_on_429_and_503_only() -> None:
    assert retry_after_seconds(429, "7", T0) == 7
    assert retry_after_seconds(503, " 30 ", T0) == 30
    http_date = "Fri, 02 Jan 2026 03:05:05 GMT"
    assert retry_after_seconds(503, http_date, T0) == 60
    assert retry_after_seconds(500, "7", T0) is None
    assert retry_after_seconds(429, None, T0) is None
    assert retry_after_seconds(429, "soon", T0) is None
    assert retry_after_seconds(429, "-3", T0) is None


@pytest.mark.parametrize("status", [None, 408, 429, 500, 502, 503, 504, 599])
def test_timeouts_throttling_and_server_errors_are_retried(status: int | None) -> None:
    assert retryable(status)
    assert not delivered(status)


@pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 409, 410, 413, 422])
def test_other_refusals_are_not_retried(status: int) -> None:
    assert not retryable(status)
    assert not delivered(status)


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_is_delivered(status: int) -> None:
    assert delivered(status)
