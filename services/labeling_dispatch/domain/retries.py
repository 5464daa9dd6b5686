"""When an outbound delivery is tried again, and which vendor answers are worth retrying.

Pure: no clock, no randomness of its own (both are passed in), so the schedule is tested
directly. A delivery is tried at once, then after ``first_delay``, doubling each time up to
``max_delay``, each delay moved by up to +/- ``jitter`` of itself so that vendors coming back
from an outage are not hit by every retry in the same second; it is given up once the next
try would fall past ``horizon`` after the first.
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.labeling_dispatch.settings import LabelingSettings

# Answers after which a vendor may say when to come back (``Retry-After``).
_SAYS_WHEN = frozenset({429, 503})


def delivered(status_code: int | None) -> bool:
    """Whether the vendor acknowledged the delivery (any 2xx)."""
    return status_code is not None and 200 <= status_code < 300


def retryable(status_code: int | None) -> bool:
    """Whether a failed try is worth repeating.

    None (a timeout or a connection error), 408, 429 and 5xx are passing troubles; any
    other 4xx (and a 3xx: redirects are not followed) is the vendor refusing this delivery.
    """
    if status_code is None:
        return True
    return status_code in (408, 429) or status_code >= 500


def retry_after_seconds(status_code: int | None, header: str | None, now: datetime) -> float | None:
    """The vendor's ``Retry-After`` (seconds or an HTTP date) on a 429/503, else None."""
    if status_code not in _SAYS_WHEN or not header:
        return None
    text = header.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class RetrySchedule:
    """Exponential backoff with jitter, bounded by a maximum delay and a horizon (seconds)."""

    first_delay: float
    max_delay: float
    horizon: float
    jitter: float

    @classmethod
    def from_settings(cls, settings: LabelingSettings) -> RetrySchedule:
        """The schedule the service is configured with."""
        return cls(
            first_delay=settings.first_retry_seconds,
            max_delay=settings.max_retry_delay_seconds,
            horizon=settings.retry_horizon_seconds,
            jitter=settings.retry_jitter,
        )

    def delay(self, attempts: int) -> float:
        """The wait after the ``attempts``-th failed try, before jitter."""
        if attempts < 1:
            return 0.0
        # past ~60 doublings the float overflows long before it matters: the cap wins anyway
        doublings = min(attempts - 1, 60)
        return float(min(self.first_delay * 2**doublings, self.max_delay))

    def next_attempt(
        self,
        attempts: int,
        first_attempt_at: datetime,
        now: datetime,
        *,
        retry_after: float | None = None,
        draw: Callable[[], float] = random.random,
    ) -> datetime | None:
        """When to try again after ``attempts`` failed tries, or None to give up.

        ``retry_after`` (the vendor's own word on a 429/503) replaces the computed delay,
        bounded by ``max_delay``. ``draw`` returns a number in [0, 1) (the jitter's source).
        """
        if retry_after is not None:
            wait = min(max(retry_after, 0.0), self.max_delay)
        else:
            wait = self.delay(attempts) * (1 + self.jitter * (2 * draw() - 1))
        due = now + timedelta(seconds=wait)
        if due > first_attempt_at + timedelta(seconds=self.horizon):
            return None
        return due

    def planned(self) -> list[float]:
        """Seconds after the first try at which every try happens, without jitter.

        The first entry is 0 (the first try); the last is the final try before giving up.
        """
        offsets = [0.0]
        attempts = 1
        while offsets[-1] + self.delay(attempts) <= self.horizon:
            offsets.append(offsets[-1] + self.delay(attempts))
            attempts += 1
        return offsets
