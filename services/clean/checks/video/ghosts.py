"""Ghost frames: pictures that mix two moments, found from three consecutive frames.

Two kinds, told apart because they have different causes and fixes:

- a *blended* frame is a cross-fade of the pictures around it (frame-rate conversion by frame
  blending, as ffmpeg's ``framerate`` filter or ``minterpolate`` in blend mode): it is fitted
  far better by a mix of its neighbours than real motion ever is;
- a *combed* frame carries two fields from different moments (interlaced footage shown without
  deinterlacing, telecine): its odd rows sit in time between its own even rows and a
  neighbour's, where a progressive frame's odd rows sit with its own even rows.

Both are measured on the frame's *detail* picture: :data:`DETAIL_WIDTH` area-averaged columns by
every row of a band of :data:`DETAIL_ROWS` across the middle (a vertical-only reduction keeps the
alternation of the fields, which a 64x64 thumbnail averages away, and the width keeps a moving
edge sharp enough that real motion is not mistaken for a mix).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

DETAIL_WIDTH = 160
# Only a band of this many rows across the middle of the detail picture is measured (an even
# number, starting on an even row, so the fields keep their parity).
DETAIL_ROWS = 240

# Blends. ``fit`` is the mean error of the best mix of the neighbours over the picture's change
# from its nearer neighbour (``motion``). Real motion of sharp content fits at 0.78 or worse
# (pans, moving subjects, motion blur; noise alone 0.87), a 50/50 blend inserted between two
# frames at ~0.1, and the two middle frames of each five of a 24 -> 30 fps weighted blend at
# 0.45-0.6 (the kept source frames at 0.9-1.0, the rest at 0.65-0.75). A dissolve or a fade fits
# over dozens of frames (0.05-0.5), and sub-pixel motion (a slow pan) fits anywhere from 0.2 to
# 0.77 as its phase turns, so a frame counts only when, within two frames on *each* side, a frame
# moves for real: a blend is residue between real motion.
BLEND_FIT = 0.6
REAL_MOTION_FIT = 0.7
# Under half a luma level of change the fit is codec noise.
GHOST_MIN_MOTION = 0.5
# Sub-pixel motion (a slow pan at the detail picture's own resolution) *is* a mix of the frames
# around it, and so is its ghost, which nobody can see: slow pans span 0.4-0.75, blends of real
# motion 1.2 and up (see blend_fit). SPAN_NOISE: changes under this many levels are codec noise.
GHOST_MIN_SPAN = 1.0
SPAN_NOISE = 4.0

# Combing, on squared field mismatches. The odd rows are paired with their own even rows and
# with each neighbour's; a progressive frame's odd rows fit their own even rows best and both
# neighbours about equally worse (by the motion between frames), a combed frame's fit one
# neighbour about as well as their own (within COMB_LEAD of the far neighbour's excess). Frames
# whose motion stops or cuts on one side take no part (a held picture fits its own and the next
# frame's rows alike).
COMB_LEAD = 0.3
COMB_MIN_SPREAD = 9.0  # squared levels: (3 levels)^2 between the far and the own pairing
# Combing is most of a combed frame's own mismatch (the far pairing adds as much again); fine
# horizontal stripes make a large own mismatch that motion changes by a few per cent.
COMB_FAR_SHARE = 0.5
# When a tenth of the change between frames is in whole rows' means, the picture moves up or
# down (scrolling text: 0.13-0.16; pans, subjects and combed footage: under 0.09) and a field
# can land on the other's rows; such frames are not judged.
COMB_VERTICAL_SHARE = 0.1
COMB_STEADY_MOTION = 0.3  # the motion on either side at least this share of the other


@dataclass(frozen=True)
class Ghost:
    """What one frame's ghost measures decided: a blend, combing, or neither."""

    blended: bool
    combed: bool


class FieldPicture:
    """One frame's band of the detail picture, prepared once for every comparison it takes part
    in (as the middle frame and as either neighbour): its fields, the midpoints between even
    rows, both fields averaged (``paired``) and that picture's gradient."""

    def __init__(self, detail: NDArray[np.uint8]) -> None:
        # a band of rows across the middle is enough to see either kind, and bounds the cost
        top = max(0, (len(detail) - DETAIL_ROWS) // 4 * 2)
        band = detail[top : top + DETAIL_ROWS].astype(np.float32)
        self.even = np.ascontiguousarray(band[0::2])
        odd = np.ascontiguousarray(band[1::2])
        rows = min(len(odd), len(self.even) - 1)
        self.odd = odd[:rows]
        self.between = cv2.addWeighted(self.even[:rows], 0.5, self.even[1 : rows + 1], 0.5, 0.0)
        self.paired = cv2.addWeighted(self.even[: len(odd)], 0.5, odd, 0.5, 0.0)
        gradient = np.zeros(self.paired.shape, np.float32)
        gradient[:, :-1] = cv2.absdiff(self.paired[:, 1:], self.paired[:, :-1])
        gradient[:-1, :] += np.asarray(cv2.absdiff(self.paired[1:], self.paired[:-1]), np.float32)
        self.gradient = gradient
        self.row_means = cv2.reduce(self.even, 1, cv2.REDUCE_AVG)

    def fits(self, other: FieldPicture) -> bool:
        """Whether the two can be compared (the same size)."""
        return self.even.shape == other.even.shape and self.odd.shape == other.odd.shape


def blend_fit(
    before: FieldPicture, picture: FieldPicture, after: FieldPicture
) -> tuple[float, float, float]:
    """How well ``picture`` is a mix of ``before`` and ``after``: (fit, motion, span).

    Measured on the paired rows where ``before`` and ``after`` differ beyond noise (codec noise
    on a still backdrop is no evidence either way). ``fit`` is the mean error of the
    least-squares mix (weight kept in 0..1) over ``motion``, the mean difference from the nearer
    neighbour; 0 when the mix is exact. ``span`` is the neighbours' mean difference over the
    picture's mean gradient: under 1 for sub-pixel motion, more for motion of pixels.
    """
    first, middle, last = before.paired, picture.paired, after.paired
    moving = np.asarray(cv2.absdiff(first, last) > SPAN_NOISE, np.uint8)
    count = cv2.countNonZero(moving)
    if count == 0:
        return 1.0, 0.0, 0.0
    span = cv2.norm(first, last, cv2.NORM_L2SQR, moving)  # |before - after|^2
    if span <= 0:
        return 1.0, 0.0, 0.0
    to_after = cv2.norm(middle, last, cv2.NORM_L2SQR, moving)
    to_before = cv2.norm(first, middle, cv2.NORM_L2SQR, moving)
    # the least-squares weight of ``before`` in the mix: <b - a, p - a> / |b - a|^2
    weight = min(max((span + to_after - to_before) / (2 * span), 0.0), 1.0)
    mix = cv2.addWeighted(first, weight, last, 1.0 - weight, 0.0)
    error = cv2.norm(middle, mix, cv2.NORM_L1, moving) / count
    motion = min(
        cv2.norm(middle, first, cv2.NORM_L1, moving), cv2.norm(middle, last, cv2.NORM_L1, moving)
    )
    motion /= count
    slope = cv2.mean(picture.gradient, moving)[0]
    reach = cv2.norm(first, last, cv2.NORM_L1, moving) / count / slope if slope > 0 else 0.0
    return (error / motion if motion > 0 else 1.0), motion, reach


def _mean_square(first: NDArray[Any], second: NDArray[Any]) -> float:
    return float(cv2.norm(first, second, cv2.NORM_L2SQR)) / first.size


def is_combed(before: FieldPicture, picture: FieldPicture, after: FieldPicture) -> bool:
    """Whether ``picture``'s odd rows belong between its even rows and a neighbour's in time.

    Top field first, the odd rows fit the next frame's even rows about as well as their own;
    bottom field first, the previous frame's. Either way the other neighbour fits clearly worse.
    Mismatches are mean squares of each odd row against the midpoint of the even rows around it.
    """
    own = _mean_square(picture.odd, picture.between)
    with_before = _mean_square(picture.odd, before.between) - own
    with_after = _mean_square(picture.odd, after.between) - own
    moved_before = _mean_square(picture.even, before.even)
    moved_after = _mean_square(after.even, picture.even)
    if min(moved_before, moved_after) < COMB_STEADY_MOTION * max(moved_before, moved_after):
        return False
    # the nearer pairing is judged against the motion on its own side (speeding up or slowing
    # down makes the two sides differ without any combing)
    (near, near_moved), (far, _) = sorted(
        ((with_before, moved_before), (with_after, moved_after)), key=lambda pair: abs(pair[0])
    )
    if far < COMB_MIN_SPREAD or far < COMB_FAR_SHARE * own:
        return False
    if abs(near) > COMB_LEAD * far or abs(near) > COMB_LEAD * near_moved:
        return False
    # rows moving up or down (scrolling text) shift one field onto the other's rows
    rows = picture.row_means
    vertical = _mean_square(rows, before.row_means) + _mean_square(after.row_means, rows)
    return vertical < COMB_VERTICAL_SHARE * (moved_before + moved_after)


# a frame's decision with its start and end time (None where unknown)
Decision = tuple[Ghost, float | None, float | None]


@dataclass(frozen=True)
class _Measure:
    start: float | None
    end: float | None
    fit: float = 1.0
    motion: float = 0.0
    span: float = 0.0
    combed: bool = False


class GhostScan:
    """Ghost frames of a stream of detail pictures, each decided two frames after it arrives.

    Holds three detail pictures and the measures of five frames, whatever the video's length.
    :meth:`add` and :meth:`close` return the decisions that became final, in frame order, each
    with its frame's start and end time (the next frame's timestamp).
    """

    def __init__(self) -> None:
        # (timestamp, picture) of the last three frames; None for a frame that takes no part
        # (black or blank, or without a detail picture)
        self._pictures: deque[tuple[float | None, FieldPicture] | None] = deque(maxlen=3)
        self._measures: deque[_Measure] = deque()
        self._first = 0  # frame index of _measures[0]
        self._next = 0  # the next frame to decide

    def add(self, timestamp: float | None, detail: NDArray[np.uint8] | None) -> list[Decision]:
        """Take the next frame (``detail`` None when it takes no part); the final decisions."""
        self._pictures.append(None if detail is None else (timestamp, FieldPicture(detail)))
        if len(self._pictures) >= 2:
            self._measure(timestamp)
        return self._decide(final=False)

    def close(self) -> list[Decision]:
        """Decide the frames still waiting for later neighbours at the end of the stream."""
        if self._pictures:
            last = self._pictures[-1]
            self._measures.append(_Measure(last[0] if last is not None else None, None))
            self._pictures.clear()
        return self._decide(final=True)

    def _measure(self, end: float | None) -> None:
        """Measure the frame before the newest, now that both of its neighbours are known."""
        middle = self._pictures[-2]
        start = middle[0] if middle is not None else None
        before = self._pictures[-3] if len(self._pictures) == 3 else None
        after = self._pictures[-1]
        if middle is None or before is None or after is None:
            self._measures.append(_Measure(start, end))
            return
        first, picture, last = before[1], middle[1], after[1]
        if not (picture.fits(first) and picture.fits(last)):
            self._measures.append(_Measure(start, end))
            return
        fit, motion, span = blend_fit(first, picture, last)
        combed = is_combed(first, picture, last)
        self._measures.append(_Measure(start, end, fit, motion, span, combed))

    def _decide(self, final: bool) -> list[Decision]:
        decided = []
        last = self._first + len(self._measures) - 1
        while self._next + 2 <= last or (final and self._next <= last):
            low = max(self._next - 2, self._first)
            window = [
                self._measures[i - self._first] for i in range(low, min(self._next + 2, last) + 1)
            ]
            frame = self._measures[self._next - self._first]
            at = self._next - low
            blended = (
                frame.motion >= GHOST_MIN_MOTION
                and frame.span >= GHOST_MIN_SPAN
                and frame.fit <= BLEND_FIT
                and _moves(window[:at], frame.motion)
                and _moves(window[at + 1 :], frame.motion)
            )
            decided.append((Ghost(blended, frame.combed), frame.start, frame.end))
            self._next += 1
            while self._first < self._next - 2:
                self._measures.popleft()
                self._first += 1
        return decided


def _moves(side: list[_Measure], motion: float) -> bool:
    """Whether a frame on this side moves for real, about as much as the frame judged."""
    return any(other.fit >= REAL_MOTION_FIT and other.motion >= 0.5 * motion for other in side)
