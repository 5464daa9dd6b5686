"""Tasks and jobs as state machines, and the rules that shape a job's queue.

Pure: no I/O, no clock. The use cases ask here whether a move is allowed, how many gold
tasks are due, how uncertain a prediction is, and where a task goes in its job's queue.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


class IllegalTransition(ValueError):
    """A task or job asked to move to a state it cannot reach from where it is."""

    def __init__(self, kind: str, current: str, target: str) -> None:
        super().__init__(f"a {kind} cannot go from {current} to {target}")
        self.kind = kind
        self.current = current
        self.target = target


class TaskState(enum.StrEnum):
    """Where a task is in its life."""

    queued = "queued"  # waiting for a vendor
    assigned = "assigned"  # in a delivery the vendor has not acknowledged yet
    dispatched = "dispatched"  # acknowledged: the vendor holds it, its lease runs
    submitted = "submitted"  # answered
    rework = "rework"  # a reviewer sent the answer back; it is queued again with a comment
    cancelled = "cancelled"  # its job was cancelled


TASK_TRANSITIONS: Mapping[TaskState, frozenset[TaskState]] = {
    TaskState.queued: frozenset({TaskState.assigned, TaskState.cancelled}),
    # back to queued: the delivery holding it was given up or refused
    TaskState.assigned: frozenset({TaskState.dispatched, TaskState.queued, TaskState.cancelled}),
    # back to queued: the lease ran out (the assignment is then ``expired``)
    TaskState.dispatched: frozenset({TaskState.submitted, TaskState.queued, TaskState.cancelled}),
    TaskState.submitted: frozenset({TaskState.rework}),
    TaskState.rework: frozenset({TaskState.queued, TaskState.cancelled}),
    TaskState.cancelled: frozenset(),
}
# States a task can still be worked in; a cancelled job cancels exactly these.
OPEN_TASK_STATES = frozenset(
    {TaskState.queued, TaskState.assigned, TaskState.dispatched, TaskState.rework}
)


def task_transition(current: str, target: str) -> TaskState:
    """``target`` if a task in ``current`` may move there, else :class:`IllegalTransition`."""
    if TaskState(target) not in TASK_TRANSITIONS[TaskState(current)]:
        raise IllegalTransition("task", current, target)
    return TaskState(target)


class JobState(enum.StrEnum):
    """Whether a job takes in and sends out tasks."""

    open = "open"
    paused = "paused"  # still takes in new assets; dispatches nothing new
    cancelled = "cancelled"
    completed = "completed"


JOB_TRANSITIONS: Mapping[JobState, frozenset[JobState]] = {
    JobState.open: frozenset({JobState.paused, JobState.cancelled, JobState.completed}),
    JobState.paused: frozenset({JobState.open, JobState.cancelled}),
    JobState.cancelled: frozenset(),
    JobState.completed: frozenset(),
}
# States in which a job's dataset's newly cleaned assets become tasks.
ENQUEUEING_JOB_STATES = frozenset({JobState.open, JobState.paused})


def job_transition(current: str, target: str) -> JobState:
    """``target`` if a job in ``current`` may move there, else :class:`IllegalTransition`."""
    if JobState(target) not in JOB_TRANSITIONS[JobState(current)]:
        raise IllegalTransition("job", current, target)
    return JobState(target)


def gold_tasks_due(regular: int, gold: int, ratio: float) -> int:
    """How many gold tasks to add now so that gold / (gold + regular) stays <= ``ratio``.

    The most that keeps the share at or under the ratio: gold <= ratio * regular / (1 - ratio).
    """
    if ratio <= 0 or regular <= 0:
        return 0
    if ratio >= 1:
        raise ValueError("a gold ratio must be below 1")
    # the small epsilon keeps an exact ratio (0.2 of 4 regular = 1 gold) from rounding down
    allowed = math.floor(ratio * regular / (1 - ratio) + 1e-9)
    return max(0, allowed - gold)


def draw_gold(uses: Mapping[Any, int], count: int) -> list[Any]:
    """``count`` gold items, least used first (ties by key), each draw counted as a use."""
    if not uses or count <= 0:
        return []
    tally = dict(uses)
    drawn = []
    for _ in range(count):
        item = min(tally, key=lambda k: (tally[k], str(k)))
        tally[item] += 1
        drawn.append(item)
    return drawn


def prediction_margin(shapes: Sequence[Mapping[str, Any]]) -> float | None:
    """Top score minus the second (1.0 with a single score; None without scores).

    A low margin means the model hesitated between two answers: the asset is uncertain.
    """
    scores = sorted((float(s["score"]) for s in shapes if s.get("score") is not None), reverse=True)
    if not scores:
        return None
    if len(scores) == 1:
        return 1.0
    return scores[0] - scores[1]


def lowest_margin(margins: Iterable[float | None]) -> float | None:
    """The most uncertain of an asset's models' margins (None if no model scored it)."""
    known = [m for m in margins if m is not None]
    return min(known) if known else None


# Uncertainty scores of assets without predictions start here: after every margin (<= 1).
_UNPREDICTED = 2.0
# Seconds since the epoch scaled into [0, 1) for the next few centuries.
_ARRIVAL_SCALE = 1e11


def priority_score(priority: str, arrival_epoch: float, margin: float | None) -> float:
    """Where a task goes in its job's queue: lower is sent first.

    ``arrival``: by the time its asset was cleaned. ``uncertainty``: by the asset's lowest
    prediction margin; assets without predictions after every predicted one, by arrival.
    """
    if priority == "arrival":
        return arrival_epoch
    if priority == "uncertainty":
        if margin is None:
            return _UNPREDICTED + arrival_epoch / _ARRIVAL_SCALE
        return min(max(margin, 0.0), 1.0)
    raise ValueError(f"unknown priority {priority!r}")
