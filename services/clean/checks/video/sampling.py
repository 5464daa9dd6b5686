"""Frames sampled for labeling: a pure schedule decided one thumbnail at a time, and the decode
loop that feeds it and encodes the frames it keeps as JPEG."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from av.video.reformatter import VideoReformatter
from numpy.typing import NDArray

from services.clean.checks.video.container import VideoSource
from services.clean.checks.video.decode import decoded_frames, jpeg_of, open_video, thumbnail_of
from services.clean.checks.video.frame_scan import picture_difference

# Sampling for labeling. A cut between scenes moves the thumbnail by tens of levels while
# continuous motion between consecutive frames rarely moves it by more than ten (PySceneDetect's
# content detector cuts at 27 on a similar scale); a sample closer than 2.0 levels to the last
# one adds nothing a labeler would see.
SAMPLE_EVERY_SECONDS = 1.0
SCENE_CHANGE_DIFFERENCE = 30.0
SAMPLE_MIN_DIFFERENCE = 2.0
SAMPLE_JPEG_QUALITY = 90


@dataclass(frozen=True)
class SampledFrame:
    """One frame picked for labeling: when it is shown, the picture as JPEG, its decode index."""

    timestamp: float
    jpeg: bytes
    frame_index: int


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
    Frames without a timestamp are never sampled. Raises :class:`UnreadableVideo` when the file
    cannot be opened or has no video stream.
    """
    schedule = SamplingSchedule(every_seconds, scene_change, min_difference)
    with open_video(source) as (container, stream):
        reformatter = VideoReformatter()
        for index, frame in enumerate(decoded_frames(container, stream, [])):
            timestamp = frame.time
            if (
                schedule.takes(timestamp, thumbnail_of(frame, reformatter))
                and timestamp is not None
            ):
                yield SampledFrame(timestamp, jpeg_of(frame, jpeg_quality), index)


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
