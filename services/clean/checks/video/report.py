"""One video in, one report out: structure, declared facts, one decode pass, then judgement
of the flat metrics against :data:`DEFAULT_VIDEO_THRESHOLDS`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar

from services.clean.checks.thresholds import (
    CheckedFile,
    CheckResult,
    Range,
    Threshold,
    judge_metrics,
)
from services.clean.checks.video.container import (
    VideoSource,
    container_problems,
    matroska_clusters,
)
from services.clean.checks.video.decode import (
    UnreadableVideo,
    VideoProbe,
    open_video,
    probe_stream,
    scan_stream,
)
from services.clean.checks.video.frame_scan import (
    DUPLICATE_TOLERANCE,
    FROZEN_TOLERANCE,
    MIN_FROZEN_SECONDS,
    PictureTolerance,
    VideoScan,
)

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


# First-cut defaults, to be calibrated by the clean benchmark; docs say why each is where it is.
# They judge the flat metrics of :attr:`VideoReport.metrics`; the per-frame tolerances of
# frame_scan decide what those metrics count and need a re-scan to change.
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
        # judged in context rather than over the clip: one picture held 2-4 times between moving
        # pictures is a dropped or duplicated frame, one cut to black for 0.2 s between moving
        # pictures a lost signal or a bad splice, however short the share of the clip
        "stutter": Threshold(
            "stutter_events", 0.0, "above", "pictures are held for a few frames in moving footage"
        ),
        "black_gap": Threshold(
            "black_gaps", 0.0, "above", "the picture cuts to black between moving pictures"
        ),
        # a frame-blending converter mixes 2 frames in 5 (24 -> 30 fps) to 1 in 5 (a blend
        # inserted); interlaced footage combs whenever it moves; one frame in 25 leaves room for
        # the odd frame around a cut or a sudden stop
        "blended_frames": Threshold(
            "blended_frame_ratio", 0.04, "above", "frames are blends of their neighbours (ghosts)"
        ),
        "combed_frames": Threshold(
            "combed_frame_ratio", 0.04, "above", "frames are interlaced and comb when moving"
        ),
    }
)


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
    # where each measured check found what it counts, per check code (see VideoScan.ranges)
    ranges: Mapping[str, tuple[Range, ...]] = field(default_factory=dict)

    corruption_codes: ClassVar[frozenset[str]] = VIDEO_CORRUPTION_CODES


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
        with open_video(source) as (container, stream):
            probe = probe_stream(container, stream)
            try:
                scan = scan_stream(
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
    checks = (*problems, *judge_metrics(metrics, thresholds, scan.ranges))
    return VideoReport(probe, scan, checks, metrics, scan.ranges)


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
        "stutter_events": float(scan.stutter_events),
        "black_gaps": float(scan.black_gaps),
        "blended_frames": float(scan.blended_frames),
        "blended_frame_ratio": scan.share(scan.blended_frames),
        "combed_frames": float(scan.combed_frames),
        "combed_frame_ratio": scan.share(scan.combed_frames),
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
