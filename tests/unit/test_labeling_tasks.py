"""The task and job state machines and the queue rules (gold share, margins, priority)."""

from __future__ import annotations

import pytest

from services.labeling_dispatch.domain.tasks import (
    OPEN_TASK_STATES,
    IllegalTransition,
    JobState,
    TaskState,
    draw_gold,
    gold_tasks_due,
    job_transition,
    lowest_margin,
    prediction_margin,
    priority_score,
    task_transition,
)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("queued", "assigned"),
        ("assigned", "dispatched"),
        ("dispatched", "submitted"),
        ("dispatched", "queued"),
        ("assigned", "queued"),
        ("submitted", "rework"),
        ("rework", "queued"),
        ("queued", "cancelled"),
        ("dispatched", "cancelled"),
    ],
)
def test_task_moves_along_its_life(current: str, target: str) -> None:
    assert task_transition(current, target) == TaskState(target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("queued", "submitted"),
        ("queued", "dispatched"),
        ("submitted", "queued"),
        ("submitted", "cancelled"),
        ("cancelled", "queued"),
        ("rework", "submitted"),
    ],
)
def test_task_refuses_a_skipped_or_reversed_step(current: str, target: str) -> None:
    with pytest.raises(IllegalTransition):
        task_transition(current, target)


def test_every_open_task_state_can_be_cancelled() -> None:
    for state in OPEN_TASK_STATES:
        assert task_transition(state, "cancelled") is TaskState.cancelled


def test_job_pause_resume_cancel() -> None:
    assert job_transition("open", "paused") is JobState.paused
    assert job_transition("paused", "open") is JobState.open
    assert job_transition("paused", "cancelled") is JobState.cancelled
    for current, target in [("cancelled", "open"), ("open", "open"), ("completed", "paused")]:
        with pytest.raises(IllegalTransition):
            job_transition(current, target)


@pytest.mark.parametrize(
    ("regular", "gold", "ratio", "due"),
    [
        (10, 0, 0.0, 0),
        (4, 0, 0.2, 1),  # 1 / 5 is exactly 0.2
        (3, 0, 0.2, 0),  # 1 / 4 would be 0.25
        (9, 1, 0.1, 0),
        (18, 1, 0.1, 1),
        (100, 0, 0.5, 100),
        (0, 0, 0.5, 0),
        (10, 5, 0.2, 0),  # already over: never negative
    ],
)
def test_gold_due_keeps_the_share_at_or_under_the_ratio(
    regular: int, gold: int, ratio: float, due: int
) -> None:
    assert gold_tasks_due(regular, gold, ratio) == due


def test_gold_share_never_exceeds_the_ratio_as_tasks_arrive() -> None:
    gold = 0
    for regular in range(1, 1001):
        gold += gold_tasks_due(regular, gold, 0.15)
        assert gold / (gold + regular) <= 0.15
    assert gold == 176  # floor(0.15 * 1000 / 0.85): as many as the ratio allows


def test_gold_is_drawn_least_used_first() -> None:
    assert draw_gold({"a": 2, "b": 0, "c": 1}, 4) == ["b", "b", "c", "a"]
    assert draw_gold({}, 3) == []


def test_margin_is_top_score_minus_second() -> None:
    shapes: list[dict[str, object]] = [
        {"score": 0.9},
        {"score": 0.6},
        {"score": 0.2},
        {"class": "x"},
    ]
    assert prediction_margin(shapes) == pytest.approx(0.3)
    assert prediction_margin([{"score": 0.4}]) == 1.0
    assert prediction_margin([{"class": "x"}]) is None
    assert lowest_margin([0.5, None, 0.1]) == 0.1
    assert lowest_margin([None]) is None


def test_priority_orders_by_arrival_or_uncertainty() -> None:
    assert priority_score("arrival", 100.0, 0.1) < priority_score("arrival", 200.0, 0.0)
    uncertain = priority_score("uncertainty", 200.0, 0.05)
    sure = priority_score("uncertainty", 100.0, 0.9)
    early_unknown = priority_score("uncertainty", 1.7e9, None)
    late_unknown = priority_score("uncertainty", 1.8e9, None)
    assert uncertain < sure < early_unknown < late_unknown
