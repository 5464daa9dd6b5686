"""The pure picture and timing logic of the decode pass: thumbnails in, a VideoScan out, no I/O.

:func:`summarize_frames` folds decoded frames (:class:`DecodedFrame`: a timestamp and a 64x64
grayscale thumbnail) into timing statistics, repeated and frozen pictures, and black and blank
frames, in constant memory.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from services.clean.checks.thresholds import Range
from services.clean.checks.video.fingerprint import FrameHasher, VideoSignature
from services.clean.checks.video.ghosts import Ghost, GhostScan
from services.clean.checks.video.interruptions import Interruptions, TimeRanges

# Every picture comparison is made on this thumbnail: small enough that sensor noise and
# compression artefacts average out and a comparison costs microseconds, large enough that a
# person moving across a tenth of the picture still changes it.
THUMBNAIL_SIDE = 64


@dataclass(frozen=True)
class PictureTolerance:
    """When two thumbnails show the same picture: at most ``share`` of their pixels differ by
    more than ``level`` luma levels (0-255).

    A count of changed pixels rather than a mean over the picture, so a small subject moving
    across a still backdrop changes the picture even though it moves the mean by a fraction of
    a level.
    """

    level: int
    share: float

    def same(self, first: NDArray[np.uint8], second: NDArray[np.uint8]) -> bool:
        """Whether ``second`` shows the same picture as ``first`` within this tolerance."""
        return changed_pixels(first, second, self.level) <= self.share * first.size


# A repeated frame: no part of the picture moved beyond codec noise. A still picture re-encoded
# at 2 Mb/s moves thumbnail pixels by at most 2-3 levels (5 once, 160x120 MPEG-4), while a
# person-sized subject of 10 levels' contrast walking 1 % of the width per frame moves its edges
# by 5-10. Starved encodes (400 kb/s) can move a repeated picture by up to 12 at a key frame;
# that repeat is missed, one frame per key-frame interval.
DUPLICATE_TOLERANCE = PictureTolerance(level=3, share=0.0)

# A frozen picture: as above, but a clock-sized patch (0.5 % of the picture, 20 thumbnail
# pixels) may change, and so may key-frame pulses of starved encodes, so a stalled camera with
# a burnt-in clock still freezes; a person-sized subject (3 % of the picture) does not.
FROZEN_TOLERANCE = PictureTolerance(level=6, share=0.005)

# A still picture held at least this long is a frozen segment (a stalled camera or encoder).
MIN_FROZEN_SECONDS = 2.0

# Black frame, after ffmpeg's blackdetect defaults: at least 98 % of the picture at or below 10 %
# of the luma range (26 of 255). Measured on the thumbnail, so a few bright pixels (a clock
# overlay) do not rescue a black frame, while a dark but lit scene is not black.
BLACK_PIXEL_LUMA = 26
BLACK_PIXEL_SHARE = 0.98

# A frame interval this share longer or shorter than the mean so far is where a variable frame
# rate shows (millisecond time bases give 29.97 fps intervals of 33/34 ms, 3 % apart).
SPIKE_SHARE = 0.5

# Blank frame: a flat picture of any other colour (a "no signal" screen, a solid test card).
# Real content, even fog or a white wall, keeps a luma spread of several levels on the thumbnail.
BLANK_LUMA_SPREAD = 3.0


@dataclass(frozen=True)
class DecodedFrame:
    """All the scan keeps of one decoded frame.

    ``timestamp`` and ``duration`` are in seconds (None when the stream does not say);
    ``thumbnail`` is the picture's luma at THUMBNAIL_SIDE x THUMBNAIL_SIDE; ``detail`` its luma
    at DETAIL_WIDTH columns by every row (see ghosts.py), None to skip the ghost checks.
    """

    index: int
    timestamp: float | None
    duration: float | None
    thumbnail: NDArray[np.uint8]
    detail: NDArray[np.uint8] | None = None


@dataclass(frozen=True)
class FrozenSegment:
    """A stretch in which the picture does not change, from ``start`` to ``end`` seconds."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        """How long the picture stays frozen."""
        return self.end - self.start


@dataclass(frozen=True)
class VideoScan:
    """What decoding every frame once found.

    Timing: ``mean_frame_rate`` comes from the deltas between increasing timestamps;
    ``frame_interval_variation`` is their coefficient of variation (0 for a constant rate) and
    ``frame_interval_ratio`` the longest over the shortest. A timestamp equal to or before its
    predecessor counts in ``non_increasing_timestamps`` and takes no part in the rate.

    Pictures: a frame that shows the same picture as the first frame of the current run
    (within :data:`DUPLICATE_TOLERANCE`: no part of the picture changed beyond codec noise) is a
    duplicate; ``longest_duplicate_run`` counts the run's frames including its first. Still runs
    are measured apart, within the looser :data:`FROZEN_TOLERANCE` (a clock overlay may tick):
    ``longest_frozen_seconds`` is the longest one's time on screen, and those lasting at least
    the frozen minimum are listed in ``frozen_segments``.
    Black and blank frames are reported as such and take no part in runs (a fade to black is
    not a stalled camera); black frames are not counted again as blank.

    Damage: ``decode_errors`` counts packets the decoder refused, frames it flagged corrupt, a
    demuxer failure, and each stretch of frame bytes the demuxer skipped without an error
    (``unread_stretches``, byte ranges of a Matroska file's clusters that no packet came from).

    In context (interruptions.py): ``stutter_events`` are pictures held 2-4 times between moving
    pictures, ``black_gaps`` black stretches of 0.2 s or more between moving pictures. Ghosts
    (ghosts.py): ``blended_frames`` mix the pictures around them, ``combed_frames`` carry fields
    from two moments. ``ranges`` names, per check code, where each check found what it counts:
    [start, end] seconds, the first MAX_RANGES, touching ones merged.
    """

    decoded_frames: int
    decode_errors: int
    first_timestamp: float | None
    end_timestamp: float | None
    mean_frame_rate: float | None
    frame_interval_variation: float
    frame_interval_ratio: float
    missing_timestamps: int
    non_increasing_timestamps: int
    first_non_increasing_frame: int | None
    duplicate_frames: int
    duplicate_runs: int
    longest_duplicate_run: int
    longest_frozen_seconds: float
    frozen_segments: tuple[FrozenSegment, ...]
    black_frames: int
    blank_frames: int
    unread_stretches: tuple[tuple[int, int], ...] = ()
    stutter_events: int = 0
    black_gaps: int = 0
    blended_frames: int = 0
    combed_frames: int = 0
    ranges: Mapping[str, tuple[Range, ...]] = field(default_factory=dict)
    # the samples duplicate detection compares (times, hashes, block means), stream times
    fingerprint: VideoSignature | None = None

    @property
    def decoded_duration(self) -> float:
        """Seconds from the first frame's timestamp to the end of the last frame."""
        if self.first_timestamp is None or self.end_timestamp is None:
            return 0.0
        return self.end_timestamp - self.first_timestamp

    def share(self, count: int) -> float:
        """``count`` as a fraction of the decoded frames."""
        return count / self.decoded_frames if self.decoded_frames else 0.0


def picture_difference(first: NDArray[np.uint8], second: NDArray[np.uint8]) -> float:
    """Mean absolute luma difference of two thumbnails, in levels of 0-255."""
    return float(cv2.absdiff(first, second).mean())


def changed_pixels(first: NDArray[np.uint8], second: NDArray[np.uint8], level: int) -> int:
    """How many pixels of two thumbnails differ by more than ``level`` luma levels."""
    return int(np.count_nonzero(cv2.absdiff(first, second) > level))


def is_black(thumbnail: NDArray[np.uint8]) -> bool:
    """Whether nearly all of the picture is at black level (see BLACK_PIXEL_SHARE)."""
    dark = np.count_nonzero(thumbnail <= BLACK_PIXEL_LUMA)
    return bool(dark >= BLACK_PIXEL_SHARE * thumbnail.size)


def is_blank(thumbnail: NDArray[np.uint8]) -> bool:
    """Whether the picture is one flat colour (black frames included)."""
    return float(thumbnail.std()) < BLANK_LUMA_SPREAD


def summarize_frames(
    frames: Iterable[DecodedFrame],
    duplicate_tolerance: PictureTolerance = DUPLICATE_TOLERANCE,
    frozen_tolerance: PictureTolerance = FROZEN_TOLERANCE,
    min_frozen_seconds: float = MIN_FROZEN_SECONDS,
) -> VideoScan:
    """Fold decoded frames, in decode order, into a :class:`VideoScan` (``decode_errors`` = 0).

    Consumes the frames one at a time and keeps three thumbnails at most (the frame and the first
    frames of its duplicate and still runs), so it runs in constant memory over a video of any
    length.
    """
    timing = _Timing()
    repeats = _PictureRuns(duplicate_tolerance, min_frozen_seconds)
    stills = _PictureRuns(frozen_tolerance, min_frozen_seconds)
    decoded = black = blank = 0
    interruptions = Interruptions(duplicate_tolerance.same, frozen_tolerance.same)
    ghosts = _Ghosts()
    black_runs, blank_runs = _Stretches(), _Stretches()
    hasher = FrameHasher()
    for frame in frames:
        decoded += 1
        timing.add(frame)
        dark = is_black(frame.thumbnail)
        flat = not dark and is_blank(frame.thumbnail)
        interruptions.add(frame.timestamp, frame.thumbnail, dark, flat)
        ghosts.add(frame.timestamp, None if dark or flat else frame.detail)
        black_runs.add(frame.timestamp, dark)
        blank_runs.add(frame.timestamp, flat)
        if dark:
            black += 1
        elif flat:
            blank += 1
        else:
            repeats.add(frame)
            stills.add(frame)
            hasher.add(frame.timestamp, frame.thumbnail)
            continue
        repeats.interrupt(frame.timestamp)
        stills.interrupt(frame.timestamp)
    repeats.close(timing.end)
    stills.close(timing.end)
    ghosts.close()
    black_runs.add(timing.end, False)
    blank_runs.add(timing.end, False)
    frozen = TimeRanges()
    for segment in stills.frozen:
        frozen.add(segment.start, segment.end)
    ranges = {
        "decode_errors": (),
        "variable_frame_rate": timing.spikes.ranges(),
        "non_increasing_timestamps": timing.backwards.ranges(),
        "duplicate_frames": repeats.where.ranges(),
        "frozen": frozen.ranges(),
        "black_frames": black_runs.where.ranges(),
        "blank_frames": blank_runs.where.ranges(),
        "stutter": interruptions.stutter_ranges.ranges(),
        "black_gap": interruptions.gap_ranges.ranges(),
        "blended_frames": ghosts.blended_where.ranges(),
        "combed_frames": ghosts.combed_where.ranges(),
    }
    return VideoScan(
        decoded_frames=decoded,
        decode_errors=0,
        first_timestamp=timing.first,
        end_timestamp=timing.end,
        mean_frame_rate=1.0 / timing.mean if timing.deltas and timing.mean > 0 else None,
        frame_interval_variation=timing.variation,
        frame_interval_ratio=timing.longest / timing.shortest if timing.shortest > 0 else 0.0,
        missing_timestamps=timing.missing,
        non_increasing_timestamps=timing.non_increasing,
        first_non_increasing_frame=timing.first_non_increasing,
        duplicate_frames=repeats.duplicates,
        duplicate_runs=repeats.runs,
        longest_duplicate_run=repeats.longest,
        longest_frozen_seconds=stills.longest_seconds,
        frozen_segments=tuple(stills.frozen),
        black_frames=black,
        blank_frames=blank,
        fingerprint=hasher.signature(),
        stutter_events=interruptions.stutters,
        black_gaps=interruptions.gaps,
        blended_frames=ghosts.blended,
        combed_frames=ghosts.combed,
        ranges={code: found for code, found in ranges.items() if found},
    )


class _Ghosts:
    """Counts and ranges of the ghost frames :class:`GhostScan` decides."""

    def __init__(self) -> None:
        self._scan = GhostScan()
        self.blended = 0
        self.combed = 0
        self.blended_where = TimeRanges()
        self.combed_where = TimeRanges()

    def add(self, timestamp: float | None, detail: NDArray[np.uint8] | None) -> None:
        self._count(self._scan.add(timestamp, detail))

    def close(self) -> None:
        self._count(self._scan.close())

    def _count(self, decisions: Iterable[tuple[Ghost, float | None, float | None]]) -> None:
        for ghost, start, end in decisions:
            if ghost.blended:
                self.blended += 1
                self.blended_where.add(start, end)
            if ghost.combed:
                self.combed += 1
                self.combed_where.add(start, end)


class _Stretches:
    """Where consecutive frames of one kind (black, blank) run: from the first one's timestamp
    to the next frame's."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.where = TimeRanges()

    def add(self, timestamp: float | None, inside: bool) -> None:
        if inside and self.start is None:
            self.start = timestamp
        elif not inside and self.start is not None:
            self.where.add(self.start, timestamp)
            self.start = None


class _Timing:
    """Running statistics of frame timestamps (Welford's mean and variance of the deltas)."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.end: float | None = None
        self.previous: float | None = None
        self.deltas = 0
        self.mean = 0.0
        self._squares = 0.0
        self.shortest = 0.0
        self.longest = 0.0
        self.missing = 0
        self.non_increasing = 0
        self.first_non_increasing: int | None = None
        self.spikes = TimeRanges()  # intervals half as long again as the mean so far, or half
        self.backwards = TimeRanges()  # from a non-increasing timestamp to the latest before it

    @property
    def variation(self) -> float:
        """Coefficient of variation of the deltas (population), 0 with fewer than two."""
        if self.deltas < 2 or self.mean <= 0:
            return 0.0
        # rounded so that a constant rate reads 0 rather than floating-point dust (1e-15)
        return round(math.sqrt(max(self._squares, 0.0) / self.deltas) / self.mean, 9)

    def add(self, frame: DecodedFrame) -> None:
        timestamp = frame.timestamp
        if timestamp is None:
            self.missing += 1
            return
        if self.first is None:
            self.first = timestamp
        if self.previous is not None:
            delta = timestamp - self.previous
            if delta <= 0:
                self.non_increasing += 1
                self.backwards.add(timestamp, self.previous)
                if self.first_non_increasing is None:
                    self.first_non_increasing = frame.index
            else:
                if self.deltas >= 3 and abs(delta - self.mean) > SPIKE_SHARE * self.mean:
                    self.spikes.add(self.previous, timestamp)
                self.deltas += 1
                step = delta - self.mean
                self.mean += step / self.deltas
                self._squares += step * (delta - self.mean)
                self.shortest = delta if self.deltas == 1 else min(self.shortest, delta)
                self.longest = max(self.longest, delta)
        self.previous = timestamp if self.previous is None else max(self.previous, timestamp)
        # the last frame is shown for its own duration; without one, for a typical interval
        shown = frame.duration if frame.duration else self.mean
        self.end = timestamp + shown if self.end is None else max(self.end, timestamp + shown)


class _PictureRuns:
    """Runs of frames showing the same picture as the run's first frame, within ``tolerance``.

    Comparing with the run's first frame rather than the previous one keeps a slow fade or pan
    from chaining into one long run of repeats.
    """

    def __init__(self, tolerance: PictureTolerance, min_frozen_seconds: float) -> None:
        self.tolerance = tolerance
        self.min_frozen_seconds = min_frozen_seconds
        self.anchor: NDArray[np.uint8] | None = None
        self.anchor_time: float | None = None
        self.length = 0
        self.duplicates = 0
        self.runs = 0
        self.longest = 1
        self.longest_seconds = 0.0
        self.frozen: list[FrozenSegment] = []
        self.where = TimeRanges()  # of the runs

    def add(self, frame: DecodedFrame) -> None:
        if self.anchor is not None and self.tolerance.same(self.anchor, frame.thumbnail):
            self.length += 1
            self.duplicates += 1
            return
        self.close(frame.timestamp)
        self.anchor = frame.thumbnail
        self.anchor_time = frame.timestamp
        self.length = 1

    def interrupt(self, timestamp: float | None) -> None:
        """A frame that belongs to no run (black or blank) ends the current one."""
        self.close(timestamp)
        self.anchor = None

    def close(self, end: float | None) -> None:
        """End the current run at ``end`` seconds (when the next picture appears)."""
        if self.length > 1:
            self.runs += 1
            self.longest = max(self.longest, self.length)
            start = self.anchor_time
            self.where.add(start, end)
            if start is not None and end is not None:
                self.longest_seconds = max(self.longest_seconds, end - start)
                if end - start >= self.min_frozen_seconds:
                    self.frozen.append(FrozenSegment(start, end))
        self.length = 0
