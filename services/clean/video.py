"""Video checks: what a video file declares, what actually decodes, and frames sampled for labeling.

The service streams the object from the store into a temporary file and hands it here, as a path
or a binary file object; nothing in this module touches the network, the database or Kafka.

Reading is split in three layers so the judgement stays pure and re-playable:

1. the container's structure (``truncated``, ``missing_index``) from a few header bytes, for the
   MP4/MOV, Matroska/WebM and AVI families;
2. one decode pass with PyAV that reduces every frame, as it arrives, to its presentation time
   and a 64x64 grayscale thumbnail (:class:`DecodedFrame`); a couple of thumbnails and the frame
   being decoded are all that is held, so memory does not grow with the video's length;
3. :func:`summarize_frames`, a pure fold over those frames (timing, repeated pictures, black and
   blank frames), and :func:`judge_metrics` of the flat metrics against
   :data:`DEFAULT_VIDEO_THRESHOLDS` -- the same judgement the image checks use, so a dataset whose
   policy changes is re-judged from stored metrics without decoding the video again.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import BinaryIO, ClassVar

import av
import av.error
import cv2
import numpy as np
from av.codec.context import ThreadType
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.reformatter import Interpolation, VideoReformatter
from av.video.stream import VideoStream
from numpy.typing import NDArray

from services.clean.checks.thresholds import (
    CheckedFile,
    CheckResult,
    Threshold,
    UnreadableMedia,
    judge_metrics,
)

VideoSource = str | os.PathLike[str] | BinaryIO
"""A local file path, or a readable and seekable binary file object positioned anywhere."""

# Codes for files whose frames cannot be trusted to be all there (as opposed to readable but poor).
VIDEO_CORRUPTION_ORDER = (
    "empty",
    "unrecognized_format",
    "no_video_stream",
    "decode_failed",
    "truncated",
    "missing_index",
)
VIDEO_CORRUPTION_CODES = frozenset(VIDEO_CORRUPTION_ORDER)

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

# Blank frame: a flat picture of any other colour (a "no signal" screen, a solid test card).
# Real content, even fog or a white wall, keeps a luma spread of several levels on the thumbnail.
BLANK_LUMA_SPREAD = 3.0

# Unread frame bytes: inside a Matroska cluster, the bytes between one packet and the next are
# element headers (cluster, block group, block: 20-25 bytes in the files FFmpeg writes, about 120
# at most without block additions). A damaged block header makes the demuxer give up on the rest
# of its cluster, or on the rest of the file, without an error reaching the caller; a stretch of
# more than this many cluster bytes that no packet covers is such a skip.
MIN_UNREAD_BYTES = 512

# Sampling for labeling. A cut between scenes moves the thumbnail by tens of levels while
# continuous motion between consecutive frames rarely moves it by more than ten (PySceneDetect's
# content detector cuts at 27 on a similar scale); a sample closer than 2.0 levels to the last
# one adds nothing a labeler would see.
SAMPLE_EVERY_SECONDS = 1.0
SCENE_CHANGE_DIFFERENCE = 30.0
SAMPLE_MIN_DIFFERENCE = 2.0
SAMPLE_JPEG_QUALITY = 90


# First-cut defaults, to be calibrated by the clean benchmark (issue 3); docs say why each is where
# it is. They judge the flat metrics of :attr:`VideoReport.metrics`; the per-frame tolerances above
# decide what those metrics count and need a re-scan to change.
DEFAULT_VIDEO_THRESHOLDS: Mapping[str, Threshold] = MappingProxyType(
    {
        # nothing to label in less than a second; past an hour the footage is a recording dump
        # whose full decode would hold a worker for minutes
        "too_short": Threshold("duration_seconds", 1.0, "below", "video is too short"),
        "too_long": Threshold("duration_seconds", 3600.0, "above", "video is too long"),
        # any packet the decoder refuses is a damaged frame somewhere in the file
        "decode_errors": Threshold("decode_errors", 0.0, "above", "frames failed to decode"),
        # a one-frame difference (the last frame rounded away) passes from 50 frames up
        "frame_count_mismatch": Threshold(
            "frame_count_deviation", 0.02, "above", "decoded frame count differs from declared"
        ),
        # 5 % leaves room for the last frame's duration and audio-led container durations
        "duration_mismatch": Threshold(
            "duration_deviation", 0.05, "above", "decoded duration differs from declared"
        ),
        # millisecond time bases give 29.97 fps intervals of 33/34 ms (variation ~1.5 %); real
        # variable frame rate (phone capture, dropped frames) is well above 10 %
        "variable_frame_rate": Threshold(
            "frame_interval_variation", 0.10, "above", "frame rate is variable"
        ),
        "non_increasing_timestamps": Threshold(
            "non_increasing_timestamps", 0.0, "above", "timestamps do not always increase"
        ),
        # more than one frame in ten repeating its predecessor is a defect, a slideshow or a
        # frame-rate conversion (24 -> 30 fps by repeating one frame in five reads 0.2): in each
        # case the declared rate overstates the footage and the repeats add nothing to label; a
        # policy that accepts converted footage raises it to 0.25
        "duplicate_frames": Threshold(
            "duplicate_frame_ratio", 0.10, "above", "many frames repeat the previous picture"
        ),
        "frozen": Threshold("longest_frozen_seconds", MIN_FROZEN_SECONDS, "above", "video freezes"),
        # a one-second fade in a 10 s clip is normal; more than a tenth black is not
        "black_frames": Threshold("black_frame_ratio", 0.10, "above", "many frames are black"),
        "blank_frames": Threshold("blank_frame_ratio", 0.10, "above", "many frames are blank"),
    }
)


class UnreadableVideo(UnreadableMedia):
    """The file cannot be read as a video, or not completely; ``code`` says which way."""


@dataclass(frozen=True)
class VideoProbe:
    """What the container declares about its first video stream, before any frame is decoded.

    ``frame_count`` is None where the container does not store it (Matroska, WebM);
    ``duration_seconds`` is the stream's duration, else the container's. Rates are frames per
    second: ``frame_rate`` is the stream's base (nominal) rate, ``average_frame_rate`` the
    container's average over the stream.
    """

    container_format: str
    codec: str
    width: int
    height: int
    duration_seconds: float | None
    frame_count: int | None
    frame_rate: float | None
    average_frame_rate: float | None
    has_audio: bool


@dataclass(frozen=True)
class DecodedFrame:
    """All the scan keeps of one decoded frame.

    ``timestamp`` and ``duration`` are in seconds (None when the stream does not say);
    ``thumbnail`` is the picture's luma at THUMBNAIL_SIDE x THUMBNAIL_SIDE.
    """

    index: int
    timestamp: float | None
    duration: float | None
    thumbnail: NDArray[np.uint8]


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

    @property
    def decoded_duration(self) -> float:
        """Seconds from the first frame's timestamp to the end of the last frame."""
        if self.first_timestamp is None or self.end_timestamp is None:
            return 0.0
        return self.end_timestamp - self.first_timestamp

    def share(self, count: int) -> float:
        """``count`` as a fraction of the decoded frames."""
        return count / self.decoded_frames if self.decoded_frames else 0.0


@dataclass(frozen=True)
class SampledFrame:
    """One frame picked for labeling: when it is shown, the picture as JPEG, its decode index."""

    timestamp: float
    jpeg: bytes
    frame_index: int


@dataclass(frozen=True)
class VideoReport(CheckedFile):
    """Everything the video checks found out about one file.

    ``checks`` holds every structural defect found and every threshold check that could be run;
    ``metrics`` holds every measured value (flat numbers, stored with the asset) so the report can
    be re-judged later against other thresholds with :func:`judge_metrics`. ``probe`` is None when
    the file could not be opened, ``scan`` when no frame could be decoded.
    """

    probe: VideoProbe | None
    scan: VideoScan | None
    checks: tuple[CheckResult, ...]
    metrics: Mapping[str, float]

    corruption_codes: ClassVar[frozenset[str]] = VIDEO_CORRUPTION_CODES


# ---- entry points -----------------------------------------------------------------------------


def probe_video(source: VideoSource) -> VideoProbe:
    """What the container declares about its video, read without decoding any frame.

    Raises :class:`UnreadableVideo` when the file is empty, truncated, lacks its index (an MP4
    whose ``moov`` box never got written), is not a container FFmpeg can open, or has no video
    stream.
    """
    problems = container_problems(source)
    if problems:
        first = problems[0]
        raise UnreadableVideo(first.code, first.message)
    with _opened(source) as (container, stream):
        return _probe(container, stream)


def scan_frames(
    source: VideoSource,
    *,
    duplicate_tolerance: PictureTolerance = DUPLICATE_TOLERANCE,
    frozen_tolerance: PictureTolerance = FROZEN_TOLERANCE,
    min_frozen_seconds: float = MIN_FROZEN_SECONDS,
) -> VideoScan:
    """Decode every frame once and measure timing, repeated pictures and black or blank frames.

    A damaged stretch is counted in ``decode_errors`` and skipped, so a truncated file is scanned
    up to where it ends; so is a stretch of a Matroska file the demuxer skipped without saying
    (:class:`PacketCoverage`). Raises :class:`UnreadableVideo` when the file cannot be opened, has
    no video stream, or not one frame decodes.
    """
    clusters = matroska_clusters(source)
    with _opened(source) as (container, stream):
        return _scan(
            container, stream, clusters, duplicate_tolerance, frozen_tolerance, min_frozen_seconds
        )


def analyze_video(
    source: VideoSource,
    thresholds: Mapping[str, Threshold] = DEFAULT_VIDEO_THRESHOLDS,
    *,
    duplicate_tolerance: PictureTolerance = DUPLICATE_TOLERANCE,
    frozen_tolerance: PictureTolerance = FROZEN_TOLERANCE,
    min_frozen_seconds: float = MIN_FROZEN_SECONDS,
) -> VideoReport:
    """Run every video check on one file: structure, declared facts, one decode pass, judgement.

    Never raises for a bad video: an unreadable file gives a report whose only checks are its
    failures. A truncated file still opens as far as it goes, so it gets both the ``truncated``
    defect and the metrics of what remains.
    """
    problems = container_problems(source)
    clusters = matroska_clusters(source)
    try:
        with _opened(source) as (container, stream):
            probe = _probe(container, stream)
            try:
                scan = _scan(
                    container,
                    stream,
                    clusters,
                    duplicate_tolerance,
                    frozen_tolerance,
                    min_frozen_seconds,
                )
            except UnreadableVideo as undecodable:
                return VideoReport(probe, None, (*problems, undecodable.as_result()), {})
    except UnreadableVideo as unopenable:
        # a structural defect found in the bytes explains an open failure better than FFmpeg does
        return VideoReport(None, None, tuple(problems or [unopenable.as_result()]), {})
    metrics = video_metrics(probe, scan)
    return VideoReport(probe, scan, (*problems, *judge_metrics(metrics, thresholds)), metrics)


def sample_frames(
    source: VideoSource,
    every_seconds: float | None = SAMPLE_EVERY_SECONDS,
    scene_change: float | None = None,
    min_difference: float = SAMPLE_MIN_DIFFERENCE,
    jpeg_quality: int = SAMPLE_JPEG_QUALITY,
) -> Iterator[SampledFrame]:
    """Frames to label, as JPEGs, decoded lazily one at a time.

    The first frame is always a candidate; after it, the first frame at or after each multiple of
    ``every_seconds`` (counted from the first timestamp), and, when ``scene_change`` is set, every
    frame whose thumbnail differs from the previous frame's by more than ``scene_change`` levels.
    A candidate within ``min_difference`` of the last sampled frame is skipped, so a static
    stretch yields one frame. Pictures are turned upright by the stream's display rotation.
    Frames without a timestamp are never sampled. Raises :class:`UnreadableVideo` like
    :func:`scan_frames`.
    """
    schedule = SamplingSchedule(every_seconds, scene_change, min_difference)
    with _opened(source) as (container, stream):
        reformatter = VideoReformatter()
        for index, frame in enumerate(_decoded(container, stream, [])):
            timestamp = frame.time
            if schedule.takes(timestamp, _thumbnail(frame, reformatter)) and timestamp is not None:
                yield SampledFrame(timestamp, _jpeg(frame, jpeg_quality), index)


# ---- pure logic -------------------------------------------------------------------------------


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
    for frame in frames:
        decoded += 1
        timing.add(frame)
        if is_black(frame.thumbnail):
            black += 1
        elif is_blank(frame.thumbnail):
            blank += 1
        else:
            repeats.add(frame)
            stills.add(frame)
            continue
        repeats.interrupt(frame.timestamp)
        stills.interrupt(frame.timestamp)
    repeats.close(timing.end)
    stills.close(timing.end)
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
    )


def video_metrics(probe: VideoProbe, scan: VideoScan) -> dict[str, float]:
    """The flat metrics stored with a video asset and judged against the thresholds.

    A comparison whose declared side is unknown (no frame count in a Matroska file) is left
    out, so its check yields no result rather than a made-up pass.
    """
    decoded_duration = scan.decoded_duration
    metrics: dict[str, float] = {
        "width": float(probe.width),
        "height": float(probe.height),
        "duration_seconds": probe.duration_seconds or decoded_duration,
        "decoded_duration_seconds": decoded_duration,
        "decoded_frames": float(scan.decoded_frames),
        "decode_errors": float(scan.decode_errors),
        "frame_interval_variation": scan.frame_interval_variation,
        "frame_interval_ratio": scan.frame_interval_ratio,
        "missing_timestamps": float(scan.missing_timestamps),
        "non_increasing_timestamps": float(scan.non_increasing_timestamps),
        "duplicate_frames": float(scan.duplicate_frames),
        "duplicate_frame_ratio": scan.share(scan.duplicate_frames),
        "longest_duplicate_run": float(scan.longest_duplicate_run),
        "frozen_segments": float(len(scan.frozen_segments)),
        "longest_frozen_seconds": scan.longest_frozen_seconds,
        "black_frames": float(scan.black_frames),
        "black_frame_ratio": scan.share(scan.black_frames),
        "blank_frames": float(scan.blank_frames),
        "blank_frame_ratio": scan.share(scan.blank_frames),
    }
    if scan.mean_frame_rate is not None:
        metrics["mean_frame_rate"] = scan.mean_frame_rate
    if probe.frame_rate is not None:
        metrics["declared_frame_rate"] = probe.frame_rate
    if probe.duration_seconds:
        metrics["declared_duration_seconds"] = probe.duration_seconds
        metrics["duration_deviation"] = (
            abs(decoded_duration - probe.duration_seconds) / probe.duration_seconds
        )
    if probe.frame_count:
        metrics["declared_frames"] = float(probe.frame_count)
        metrics["frame_count_deviation"] = (
            abs(scan.decoded_frames - probe.frame_count) / probe.frame_count
        )
    return metrics


class PacketCoverage:
    """Which bytes of a file's frame area (Matroska clusters) the demuxer delivered as packets.

    Folds packets one at a time, in the order the demuxer reads them, from their byte position
    and size; laced packets (several frames in one block) share a position and are summed. Keeps
    only the stretches longer than ``min_bytes``, so memory does not grow with the file.
    """

    def __init__(
        self, clusters: Sequence[tuple[int, int]], min_bytes: int = MIN_UNREAD_BYTES
    ) -> None:
        self.clusters = tuple(clusters)
        self.min_bytes = min_bytes
        self.known = bool(self.clusters)
        self._covered_to = self.clusters[0][0] if self.clusters else 0
        self._block: tuple[int, int] = (-1, 0)
        self._gaps: list[tuple[int, int]] = []

    def add(self, position: int | None, size: int) -> None:
        """A packet of ``size`` bytes read at ``position`` (None or -1: the demuxer did not say)."""
        if size <= 0:
            return
        if position is None or position < 0:
            self.known = False  # a gap could no longer be told from a packet
            return
        start, length = self._block
        if position == start:
            length += size
        else:
            self._gap_until(position)
            start, length = position, size
        self._block = (start, length)
        self._covered_to = max(self._covered_to, start + length)

    def unread(self) -> list[tuple[int, int]]:
        """The stretches (start, end) of cluster bytes longer than ``min_bytes`` that no packet
        covers, the end of the last cluster included; none when a position was unknown."""
        if not self.known:
            return []
        stretches = [*self._gaps]
        if self.clusters[-1][1] - self._covered_to > self.min_bytes:
            stretches.append((self._covered_to, self.clusters[-1][1]))
        return [gap for gap in stretches if self._cluster_bytes(*gap) > self.min_bytes]

    def _gap_until(self, position: int) -> None:
        if position - self._covered_to > self.min_bytes:
            self._gaps.append((self._covered_to, position))

    def _cluster_bytes(self, start: int, end: int) -> int:
        return sum(max(0, min(end, last) - max(start, first)) for first, last in self.clusters)


class SamplingSchedule:
    """Which frames :func:`sample_frames` keeps, decided one frame at a time from thumbnails.

    Keeps the previous frame's and the last sampled frame's thumbnails, nothing more.
    """

    def __init__(
        self,
        every_seconds: float | None = SAMPLE_EVERY_SECONDS,
        scene_change: float | None = None,
        min_difference: float = SAMPLE_MIN_DIFFERENCE,
    ) -> None:
        if every_seconds is None and scene_change is None:
            raise ValueError("sample every N seconds, on scene change, or both")
        if every_seconds is not None and every_seconds <= 0:
            raise ValueError(f"every_seconds must be positive, not {every_seconds}")
        self.every_seconds = every_seconds
        self.scene_change = scene_change
        self.min_difference = min_difference
        self._origin: float | None = None
        self._next_due = -math.inf
        self._previous: NDArray[np.uint8] | None = None
        self._last_sampled: NDArray[np.uint8] | None = None

    def takes(self, timestamp: float | None, thumbnail: NDArray[np.uint8]) -> bool:
        """Whether the frame shown at ``timestamp`` with this thumbnail is sampled."""
        cut = (
            self.scene_change is not None
            and self._previous is not None
            and picture_difference(thumbnail, self._previous) > self.scene_change
        )
        self._previous = thumbnail
        if timestamp is None:
            return False
        if self._origin is None:
            self._origin = timestamp
        # a microsecond of slack: timestamps are rounded to the stream's time base
        due = self.every_seconds is not None and timestamp >= self._next_due - 1e-6
        if due and self.every_seconds is not None:
            # the next grid point after this frame, even past a gap of several intervals
            elapsed = round((timestamp - self._origin) / self.every_seconds, 6)
            self._next_due = self._origin + self.every_seconds * (math.floor(elapsed) + 1)
        first = self._last_sampled is None
        if not (due or cut or first):
            return False
        if (
            self._last_sampled is not None
            and picture_difference(thumbnail, self._last_sampled) <= self.min_difference
        ):
            return False
        self._last_sampled = thumbnail
        return True


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
                if self.first_non_increasing is None:
                    self.first_non_increasing = frame.index
            else:
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
            if start is not None and end is not None:
                self.longest_seconds = max(self.longest_seconds, end - start)
                if end - start >= self.min_frozen_seconds:
                    self.frozen.append(FrozenSegment(start, end))
        self.length = 0


# ---- container structure ----------------------------------------------------------------------

# Top-level boxes an MP4/MOV file may start with (QuickTime files may lack ``ftyp``).
_MP4_FIRST_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"})
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_MATROSKA_SEGMENT = b"\x18\x53\x80\x67"
_MATROSKA_CLUSTER = b"\x1f\x43\xb6\x75"

ReadAt = Callable[[int, int], bytes]


def container_problems(source: VideoSource) -> list[CheckResult]:
    """Structural defects found from the container's own size fields, each as a failed check.

    Reads a few bytes per top-level element: an MP4/MOV box or AVI RIFF chunk that runs past the
    end of the file, a Matroska segment longer than the file (``truncated``), an MP4 without its
    ``moov`` index (``missing_index``), an empty file (``empty``). Other formats are left to the
    decoder. An empty list means nothing is known to be wrong.
    """
    with _byte_reader(source) as (read_at, size):
        if size == 0:
            return [CheckResult("empty", False, 0.0, None, "the file is empty (zero bytes)")]
        head = read_at(0, 12)
        if head[4:8] in _MP4_FIRST_BOXES:
            return _mp4_problems(read_at, size)
        if head.startswith(_EBML_MAGIC):
            return _matroska_problems(read_at, size)
        if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
            return _avi_problems(read_at, size)
        return []


def _truncated(container: str, declared_end: int, size: int) -> CheckResult:
    return CheckResult(
        "truncated",
        False,
        float(size),
        float(declared_end),
        f"the {container} structure declares {declared_end} bytes but the file has {size}",
    )


def _mp4_problems(read_at: ReadAt, size: int) -> list[CheckResult]:
    problems: list[CheckResult] = []
    boxes: set[bytes] = set()
    position = 0
    while position + 8 <= size:
        header = read_at(position, 16)
        box_size, kind = struct.unpack_from(">I4s", header)
        header_size = 8
        if box_size == 1:  # 64-bit size follows the type
            if len(header) < 16:
                problems.append(_truncated("MP4", position + 16, size))
                break
            (box_size,) = struct.unpack_from(">Q", header, 8)
            header_size = 16
        elif box_size == 0:  # the last box runs to the end of the file
            box_size = size - position
        if box_size < header_size:
            break  # not a box boundary; the decoder will say what is wrong
        boxes.add(kind)
        if position + box_size > size:
            problems.append(_truncated("MP4", position + box_size, size))
            break
        position += box_size
    if b"moov" not in boxes:
        # the sample index is written last by most muxers, so an interrupted upload loses it
        problems.insert(
            0,
            CheckResult(
                "missing_index",
                False,
                None,
                None,
                "the MP4 has no moov box (its sample index), so its frames cannot be located",
            ),
        )
    return problems


def _matroska_problems(read_at: ReadAt, size: int) -> list[CheckResult]:
    header_end = _ebml_element_end(read_at, 0)
    if header_end is None or read_at(header_end, 4) != _MATROSKA_SEGMENT:
        return []
    segment_end = _ebml_element_end(read_at, header_end)
    if segment_end is not None and segment_end > size:
        return [_truncated("Matroska", segment_end, size)]
    return []


def matroska_clusters(source: VideoSource) -> tuple[tuple[int, int], ...] | None:
    """The byte ranges (start, end) of a Matroska/WebM file's clusters, where its frames are.

    Walks the segment's top-level elements by their size fields. Where the walk meets bytes that
    are not an element, or an element running past the segment, the structure is damaged and the
    rest of the segment is taken as cluster bytes (frames the demuxer should have read). None
    for other formats and for elements of unknown size (live recordings), whose layout only a
    full parse would give.
    """
    with _byte_reader(source) as (read_at, size):
        if read_at(0, 4) != _EBML_MAGIC:
            return None
        header_end = _ebml_element_end(read_at, 0)
        segment = None if header_end is None else _ebml_element(read_at, header_end)
        if segment is None or segment[0] != _MATROSKA_SEGMENT:
            return None
        _, position, segment_end = segment
        if segment_end is None:
            return None
        end = min(segment_end, size)
        clusters: list[tuple[int, int]] = []
        while position < end:
            element = _ebml_element(read_at, position)
            if element is None or (element[2] is not None and element[2] > end):
                clusters.append((position, end))
                break
            kind, _, element_end = element
            if element_end is None:
                return None
            if kind == _MATROSKA_CLUSTER:
                clusters.append((position, element_end))
            position = element_end
        return tuple(clusters)


def _ebml_element_end(read_at: ReadAt, position: int) -> int | None:
    """Where the EBML element at ``position`` ends; None for an unknown size or bad header."""
    element = _ebml_element(read_at, position)
    return None if element is None else element[2]


def _ebml_element(read_at: ReadAt, position: int) -> tuple[bytes, int, int | None] | None:
    """The EBML element at ``position``: its ID, where its data starts and where it ends (None
    for an unknown size); None when the bytes there are not an element header."""
    head = read_at(position, 12)
    if not head:
        return None
    id_length = _vint_length(head[0])
    if id_length is None or id_length > 4 or len(head) < id_length + 1:
        return None
    size_length = _vint_length(head[id_length])
    if size_length is None or len(head) < id_length + size_length:
        return None
    data_start = position + id_length + size_length
    raw = int.from_bytes(head[id_length : id_length + size_length], "big")
    value = raw & ((1 << (7 * size_length)) - 1)
    if value == (1 << (7 * size_length)) - 1:  # all ones: size unknown (live streams)
        return head[:id_length], data_start, None
    return head[:id_length], data_start, data_start + value


def _vint_length(first_byte: int) -> int | None:
    """The length of an EBML variable-size integer from its first byte (leading zero bits + 1)."""
    if first_byte == 0:
        return None
    return 9 - first_byte.bit_length()


def _avi_problems(read_at: ReadAt, size: int) -> list[CheckResult]:
    # files over 1 GB (OpenDML) chain several RIFF chunks; each one's size is checked
    position = 0
    while position + 8 <= size:
        kind, chunk_size = struct.unpack("<4sI", read_at(position, 8))
        if kind != b"RIFF":
            break
        end = position + 8 + chunk_size + (chunk_size & 1)
        if end > size:
            return [_truncated("AVI RIFF", end, size)]
        position = end
    return []


@contextmanager
def _byte_reader(source: VideoSource) -> Iterator[tuple[ReadAt, int]]:
    """Random access to the source's bytes and its size, without reading it whole."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as file:
            yield _reader_of(file), os.fstat(file.fileno()).st_size
        return
    size = source.seek(0, os.SEEK_END)
    try:
        yield _reader_of(source), size
    finally:
        source.seek(0)


def _reader_of(file: BinaryIO) -> ReadAt:
    def read_at(offset: int, length: int) -> bytes:
        file.seek(offset)
        return file.read(length)

    return read_at


# ---- decoding ---------------------------------------------------------------------------------


@contextmanager
def _opened(source: VideoSource) -> Iterator[tuple[InputContainer, VideoStream]]:
    """The opened container and its first video stream; a file object is read from its start."""
    if isinstance(source, str | os.PathLike):
        target: str | BinaryIO = os.fspath(source)
    else:
        source.seek(0)
        target = source
    try:
        container = av.open(target, mode="r")
    except av.error.FFmpegError as error:
        code = "decode_failed" if _known_container(source) else "unrecognized_format"
        raise UnreadableVideo(code, f"FFmpeg cannot open the file: {error.strerror}") from None
    with container:
        if not container.streams.video:
            kinds = " and ".join(sorted({stream.type for stream in container.streams})) or "no"
            raise UnreadableVideo("no_video_stream", f"the file has {kinds} streams but no video")
        stream = container.streams.video[0]
        # frame threads make the single decode pass use every core
        stream.thread_type = ThreadType.AUTO
        yield container, stream


def _known_container(source: VideoSource) -> bool:
    with _byte_reader(source) as (read_at, _):
        head = read_at(0, 12)
    return head[4:8] in _MP4_FIRST_BOXES or head.startswith(_EBML_MAGIC) or head.startswith(b"RIFF")


def _probe(container: InputContainer, stream: VideoStream) -> VideoProbe:
    duration: float | None = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    return VideoProbe(
        container_format=container.format.name,
        codec=stream.codec_context.name,
        width=stream.codec_context.width,
        height=stream.codec_context.height,
        duration_seconds=duration,
        frame_count=stream.frames or None,
        frame_rate=float(stream.base_rate) if stream.base_rate else None,
        average_frame_rate=float(stream.average_rate) if stream.average_rate else None,
        has_audio=bool(container.streams.audio),
    )


def _scan(
    container: InputContainer,
    stream: VideoStream,
    clusters: Sequence[tuple[int, int]] | None,
    duplicate_tolerance: PictureTolerance,
    frozen_tolerance: PictureTolerance,
    min_frozen_seconds: float,
) -> VideoScan:
    errors: list[str] = []
    coverage = PacketCoverage(clusters or ())
    reformatter = VideoReformatter()
    scan = summarize_frames(
        (
            _observed(index, frame, reformatter)
            for index, frame in enumerate(_decoded(container, stream, errors, coverage))
        ),
        duplicate_tolerance,
        frozen_tolerance,
        min_frozen_seconds,
    )
    unread = coverage.unread()
    errors += [
        f"bytes {start}-{end} of the frames were never read (the demuxer skipped them)"
        for start, end in unread
    ]
    if scan.decoded_frames == 0:
        detail = f": {errors[0]}" if errors else ""
        raise UnreadableVideo("decode_failed", f"no frame of the video decodes{detail}")
    return replace(scan, decode_errors=len(errors), unread_stretches=tuple(unread))


def _decoded(
    container: InputContainer,
    stream: VideoStream,
    errors: list[str],
    coverage: PacketCoverage | None = None,
) -> Iterator[VideoFrame]:
    """Every decodable frame in presentation order; each failure is appended to ``errors``.

    A packet the decoder refuses is skipped and decoding carries on; a demuxer failure ends the
    stream, since nothing after it can be located. Every packet read, of any stream, is added to
    ``coverage``.
    """
    packets = container.demux()
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.error.FFmpegError as error:
            errors.append(f"demuxing stopped: {error.strerror}")
            break
        if coverage is not None:
            coverage.add(packet.pos, packet.size)
        # not ``stream_index``: the empty packets that flush each stream at the end all read 0
        if packet.stream is not stream:
            continue
        try:
            frames = stream.decode(packet)  # an empty packet at the end flushes the decoder
        except av.error.FFmpegError as error:
            errors.append(f"packet at {packet.pts}: {error.strerror}")
            continue
        for frame in frames:
            if frame.is_corrupt:
                errors.append(f"frame at {frame.pts} decoded with errors")
            yield frame


def _observed(index: int, frame: VideoFrame, reformatter: VideoReformatter) -> DecodedFrame:
    duration = None
    if frame.duration and frame.time_base is not None:
        duration = float(frame.duration * frame.time_base)
    return DecodedFrame(index, frame.time, duration, _thumbnail(frame, reformatter))


def _thumbnail(frame: VideoFrame, reformatter: VideoReformatter) -> NDArray[np.uint8]:
    # swscale scales and converts in one step and maps limited-range luma to 0-255; one
    # reformatter per pass keeps its scaler context, which is most of the per-frame cost
    small = reformatter.reformat(
        frame,
        width=THUMBNAIL_SIDE,
        height=THUMBNAIL_SIDE,
        format="gray",
        interpolation=Interpolation.AREA,
    )
    return np.asarray(small.to_ndarray(), dtype=np.uint8)


def _jpeg(frame: VideoFrame, quality: int) -> bytes:
    pixels = np.asarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8)
    # the display matrix says how far to turn the stored picture counter-clockwise
    quarter_turns = round(frame.rotation / 90) % 4
    if quarter_turns:
        pixels = np.ascontiguousarray(np.rot90(pixels, quarter_turns))
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise UnreadableVideo("decode_failed", "a decoded frame could not be encoded as JPEG")
    return bytes(encoded.tobytes())
