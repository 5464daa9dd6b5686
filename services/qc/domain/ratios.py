"""Shares and means that carry the counts they are computed from.

Scorecards add results up over tasks, jobs and time windows as events arrive. Keeping the
numerator and denominator (not only the quotient) makes that sum exact and lets every figure be
shown with the count it rests on.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Ratio:
    """``numerator / denominator``; undefined (``None``) when there is nothing to divide by."""

    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return None if self.denominator == 0 else self.numerator / self.denominator

    def __add__(self, other: Ratio) -> Ratio:
        return Ratio(self.numerator + other.numerator, self.denominator + other.denominator)


@dataclass(frozen=True)
class Mean:
    """A mean kept as its sum and count, so means of parts combine into the mean of the whole."""

    total: float
    count: int

    @property
    def value(self) -> float | None:
        return None if self.count == 0 else self.total / self.count

    def __add__(self, other: Mean) -> Mean:
        return Mean(self.total + other.total, self.count + other.count)


NO_RATIO = Ratio(0, 0)
NO_MEAN = Mean(0.0, 0)
