"""Short interruptions of moving pictures, judged by their context, and where checks looked.

A clip can be a few per cent defective and still be worth knowing about: a picture held two or
three times while everything around it moves (a dropped or duplicated frame: a *stutter*), or a
cut to black for a fraction of a second between moving pictures (a *black gap*). Whole-clip
ratios miss both, and both look like things that are fine -- slow motion repeats a picture on
the thumbnail, a fade passes through black -- so each is counted only with moving pictures on
both sides: two clear changes before and two after, and for a black gap, pictures as bright as
the ones around them at both edges (a fade dims towards black, a cut does not).
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from services.clean.checks.thresholds import MAX_RANGES, Range

# A held picture shown 2 to 4 times; held longer it is a freeze or a slideshow, judged apart.
STUTTER_MAX_REPEATS = 3
# A black stretch this long between moving pictures is a gap; shorter ones are a cut's frame.
BLACK_GAP_SECONDS = 0.2
# The picture next to a black stretch must be at least this bright relative to the brightest of
# its four neighbours away from the stretch: a cut keeps ~1, a fade of 2+ frames is under 0.5.
LIT_SHARE = 0.6
# frames after a black stretch that must be seen before it counts
_AFTER = 3

# whether two thumbnails show the same picture (a PictureTolerance's ``same``)
SameTest = Callable[[NDArray[np.uint8], NDArray[np.uint8]], bool]

# a hold between moving pictures: two clear changes, 1-3 repeats, two clear changes
_STUTTER = re.compile(rf"MM(R{{1,{STUTTER_MAX_REPEATS}}})MM$")


class TimeRanges:
    """Where a check found something: up to MAX_RANGES [start, end] ranges in seconds, in the
    order found, touching or overlapping ranges merged."""

    def __init__(self) -> None:
        self.kept: list[Range] = []

    def add(self, start: float | None, end: float | None) -> None:
        """Note ``start``..``end`` (a point when ``end`` is unknown); nothing without a start."""
        if start is None:
            return
        stop = start if end is None or end < start else end
        if self.kept and self.kept[-1][0] <= start <= self.kept[-1][1] + 1e-6:
            if stop > self.kept[-1][1]:
                self.kept[-1] = (self.kept[-1][0], stop)
            return
        if len(self.kept) < MAX_RANGES:
            self.kept.append((start, stop))

    def ranges(self) -> tuple[Range, ...]:
        """The ranges noted, rounded to the millisecond."""
        return tuple((round(start, 3), round(end, 3)) for start, end in self.kept)


@dataclass
class _PendingGap:
    """A black stretch with moving pictures before it, waiting for the frames after it."""

    start: float
    end: float
    luma: float  # of the first picture after it
    after: list[float]  # lumas of the pictures after that one
    moving: bool = False


class Interruptions:
    """Stutters and black gaps in a stream of frames, one frame at a time.

    Each step between consecutive frames is labelled: ``R`` the same picture (within the
    duplicate tolerance), ``M`` a clear change (beyond the frozen tolerance), ``S`` a small one,
    ``B`` a step to or from a black or blank frame. Keeps the last eight labels, five lumas and
    one thumbnail.
    """

    def __init__(self, same: SameTest, still: SameTest) -> None:
        self._same = same
        self._still = still
        self._previous: NDArray[np.uint8] | None = None  # None after a black or blank frame
        self._steps: deque[tuple[str, float | None]] = deque(maxlen=8)
        self._lumas: deque[float] = deque(maxlen=5)  # of the last pictures, black ones too
        self._black_start: float | None = None
        self._lit_before = False
        self._pending: _PendingGap | None = None
        self.stutters = 0
        self.stutter_ranges = TimeRanges()
        self.gaps = 0
        self.gap_ranges = TimeRanges()

    def add(
        self, timestamp: float | None, thumbnail: NDArray[np.uint8], black: bool, blank: bool
    ) -> None:
        """Take the next frame in decode order."""
        picture = not (black or blank)
        label = "B"
        if picture and self._previous is not None:
            if self._same(self._previous, thumbnail):
                label = "R"
            else:
                label = "S" if self._still(self._previous, thumbnail) else "M"
        self._follow_gap(label, picture, thumbnail)
        if black:
            self._black(timestamp)
        elif self._black_start is not None:
            self._end_black(timestamp, picture, thumbnail)
        self._steps.append((label, timestamp))
        self._lumas.append(float(thumbnail.mean()))
        self._previous = thumbnail if picture else None
        if label == "M":
            self._find_stutter()

    def _find_stutter(self) -> None:
        labels = "".join(label for label, _ in self._steps)
        found = _STUTTER.search(labels)
        if found is None:
            return
        repeats = len(found.group(1))
        # the step into the held picture, and the step into the picture after the hold
        self.stutters += 1
        self.stutter_ranges.add(self._steps[-repeats - 3][1], self._steps[-2][1])

    def _black(self, timestamp: float | None) -> None:
        if self._black_start is not None or timestamp is None:
            return
        self._black_start = timestamp
        # the picture before must have changed clearly from the one before it and be lit
        self._lit_before = (
            bool(self._steps)
            and self._steps[-1][0] == "M"
            and len(self._lumas) >= 2
            and self._lumas[-1] >= LIT_SHARE * max(list(self._lumas)[:-1])
        )

    def _end_black(
        self, timestamp: float | None, picture: bool, thumbnail: NDArray[np.uint8]
    ) -> None:
        start, self._black_start = self._black_start, None
        if (
            start is not None
            and timestamp is not None
            and self._lit_before
            and picture
            and timestamp - start >= BLACK_GAP_SECONDS - 1e-6
        ):
            self._pending = _PendingGap(start, timestamp, float(thumbnail.mean()), [])

    def _follow_gap(self, label: str, picture: bool, thumbnail: NDArray[np.uint8]) -> None:
        """Check a pending gap against the frames after it; count it once enough are seen."""
        gap = self._pending
        if gap is None:
            return
        if not picture:
            self._pending = None
            return
        if not gap.after:
            # the picture after the gap must itself move on clearly
            gap.moving = label == "M"
        gap.after.append(float(thumbnail.mean()))
        if len(gap.after) < _AFTER:
            return
        self._pending = None
        if gap.moving and gap.luma >= LIT_SHARE * max(gap.after):
            self.gaps += 1
            self.gap_ranges.add(gap.start, gap.end)
