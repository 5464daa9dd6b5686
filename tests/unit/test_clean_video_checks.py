"""Video checks of the clean service, on small clips generated here with known defects.

Every clip is encoded with PyAV (MPEG-4 Part 2, 160x120, 25 fps unless a test needs otherwise)
into the test's temporary folder by the writers of tests/media_video.py; damaged files are made
by cutting or overwriting real encoded bytes. Pictures are coloured 20-pixel blocks that slide
2 pixels a frame, so consecutive frames differ by about 5 luma levels on the thumbnail, a still
picture by under 0.3, and a cut by 50+.
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest

from services.clean.checks.thresholds import Threshold, judge_metrics
from services.clean.checks.video import (
    DEFAULT_VIDEO_THRESHOLDS,
    UnreadableVideo,
    analyze_video,
    sample_frames,
)
from services.clean.checks.video.container import (
    PacketCoverage,
    container_problems,
    matroska_clusters,
)
from services.clean.checks.video.frame_scan import (
    DUPLICATE_TOLERANCE,
    FROZEN_TOLERANCE,
    THUMBNAIL_SIDE,
    DecodedFrame,
    summarize_frames,
)
from services.clean.checks.video.sampling import SCENE_CHANGE_DIFFERENCE, SamplingSchedule
from tests.media_video import (
    HEIGHT,
    WIDTH,
    flat,
    landscape,
    marked,
    moving,
    overwrite,
    pan,
    scene,
    walker,
    with_clock,
    write_audio,
    write_clip,
    write_repeated_timestamp,
)

# ---- generated clips --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every clip the tests use, written once for the module."""
    folder = tmp_path_factory.mktemp("videos")
    still = scene(12)
    rng = np.random.default_rng(7)
    intervals = rng.choice([20, 40, 80], size=74)
    made = {
        "clean": write_clip(folder / "clean.mp4", moving(3)),
        "clean_mkv": write_clip(folder / "clean.mkv", moving(3)),
        # 0.48 s of motion, the picture held from frame 12 until 3.0 s, then motion to 4 s
        "frozen": write_clip(
            folder / "frozen.mp4",
            [scene(f) if f < 12 or f >= 75 else still for f in range(100)],
        ),
        # every picture shown twice: 12.5 fps content doubled up to 25 fps
        "doubled": write_clip(folder / "doubled.mp4", [scene(f // 2) for f in range(75)]),
        # 1 s of black between two seconds of motion
        "black": write_clip(
            folder / "black.mp4", [flat(0) if 25 <= f < 50 else scene(f) for f in range(75)]
        ),
        # 1 s of a flat mid-grey "no signal" screen
        "blank": write_clip(
            folder / "blank.mp4", [flat(128) if 25 <= f < 50 else scene(f) for f in range(75)]
        ),
        "variable_rate": write_clip(
            folder / "variable_rate.mkv",
            moving(3),
            pts_ms=[0, *np.cumsum(intervals).tolist()],
        ),
        # motion, a still stretch from 1.0 s to 3.5 s, motion to 5 s (for sampling)
        "static_stretch": write_clip(
            folder / "static_stretch.mp4",
            [scene(25) if 25 <= f < 88 else scene(f) for f in range(125)],
        ),
        # a cut to a different scene at 1.4 s
        "cut": write_clip(
            folder / "cut.mp4", [scene(f, seed=1 if f < 35 else 2) for f in range(75)]
        ),
        # stored landscape, displayed turned 90 degrees counter-clockwise (portrait)
        "rotated": write_clip(folder / "rotated.mp4", [marked()] * 25, rotation=90),
        "faststart": write_clip(
            folder / "faststart.mp4", moving(3), options={"movflags": "faststart"}
        ),
        # static camera, a person-sized subject crossing at 1 % of the width per frame (320x240)
        "walker": write_clip(folder / "walker.mp4", [walker(f) for f in range(75)]),
        "walker_h264": write_clip(
            folder / "walker.mkv", [walker(f) for f in range(75)], codec="libx264"
        ),
        # a slow pan, 1 % of the width per frame across a smooth scene (320x240)
        "pan": write_clip(folder / "pan.mp4", [pan(f) for f in range(75)]),
        "doubled_h264": write_clip(
            folder / "doubled.mkv", [scene(f // 2) for f in range(75)], codec="libx264"
        ),
        # 24 -> 30 fps by repeating one frame in five: pictures 0 1 2 3 4 4 5 6 7 8 8 ...
        "converted": write_clip(folder / "converted.mp4", [scene(f - f // 5) for f in range(75)]),
        # a still scene held 3 s under a burnt-in clock that ticks every second
        "frozen_clock": write_clip(
            folder / "frozen_clock.mp4",
            [with_clock(landscape(WIDTH, HEIGHT), f // 25) for f in range(75)],
        ),
    }
    for name, source in [
        ("clean", "half_mp4"),
        ("clean_mkv", "half_mkv"),
        ("faststart", "half_fs"),
    ]:
        data = made[name].read_bytes()
        made[source] = folder / f"{source}.bin"
        made[source].write_bytes(data[: len(data) // 2])
    damaged = bytearray(made["clean"].read_bytes())
    noise = np.random.default_rng(3)
    for start in (len(damaged) // 3, len(damaged) // 2):
        damaged[start : start + 400] = noise.bytes(400)
    made["damaged"] = folder / "damaged.mp4"
    made["damaged"].write_bytes(bytes(damaged))
    # H.264 in Matroska, 300 bytes overwritten half-way: a block header now claims more bytes
    # than its cluster holds, and the demuxer ends the stream there without an error
    made["clean_h264_mkv"] = write_clip(folder / "clean_h264.mkv", moving(3), codec="libx264")
    made["damaged_mkv"] = overwrite(made["clean_h264_mkv"], folder / "damaged.mkv", 0.5, 300)
    made["random"] = folder / "random.bin"
    made["random"].write_bytes(np.random.default_rng(0).bytes(20_000))
    made["empty"] = folder / "empty.mp4"
    made["empty"].write_bytes(b"")
    made["audio_only"] = write_audio(folder / "audio_only.m4a")
    made["repeated_timestamp"] = write_repeated_timestamp(folder / "repeated_timestamp.mkv")
    return made


# ---- unreadable files -------------------------------------------------------------------------


def test_clean_clip_passes_every_check(clips: dict[str, Path]) -> None:
    report = analyze_video(clips["clean"])

    assert report.failures == ()
    assert not report.corrupt
    # every default threshold had its metric measured (the MP4 declares its frame count)
    assert {check.code for check in report.checks} == set(DEFAULT_VIDEO_THRESHOLDS)
    assert report.metrics["decoded_frames"] == 75
    assert report.metrics["mean_frame_rate"] == pytest.approx(25.0)
    assert report.metrics["decoded_duration_seconds"] == pytest.approx(3.0)
    assert report.metrics["duplicate_frame_ratio"] == 0
    assert report.metrics["black_frame_ratio"] == report.metrics["blank_frame_ratio"] == 0


def test_clean_matroska_clip_passes_without_a_declared_frame_count(clips: dict[str, Path]) -> None:
    report = analyze_video(clips["clean_mkv"])

    assert report.failures == ()
    assert report.probe is not None and report.probe.frame_count is None
    assert "frame_count_mismatch" not in {check.code for check in report.checks}


def test_probe_reads_what_the_container_declares(clips: dict[str, Path]) -> None:
    probe = analyze_video(clips["clean"]).probe

    assert probe is not None
    assert (probe.width, probe.height) == (WIDTH, HEIGHT)
    assert probe.duration_seconds == pytest.approx(3.0)
    assert probe.frame_count == 75
    assert probe.frame_rate == pytest.approx(25.0)


def test_mp4_cut_in_half_has_lost_its_index(clips: dict[str, Path]) -> None:
    assert container_problems(clips["half_mp4"])[0].code == "missing_index"

    report = analyze_video(clips["half_mp4"])
    assert report.failed_codes == {"missing_index", "truncated"}
    assert report.corrupt and report.probe is None


def test_mp4_with_index_first_cut_in_half_is_truncated_and_scanned_to_its_end(
    clips: dict[str, Path],
) -> None:
    assert [problem.code for problem in container_problems(clips["half_fs"])] == ["truncated"]

    report = analyze_video(clips["half_fs"])
    assert {"truncated", "frame_count_mismatch", "duration_mismatch"} <= report.failed_codes
    truncated = next(check for check in report.failures if check.code == "truncated")
    size = clips["half_fs"].stat().st_size
    assert truncated.value == size
    assert truncated.threshold == clips["faststart"].stat().st_size
    assert 0 < report.metrics["decoded_frames"] < 40


def test_matroska_cut_in_half_is_truncated(clips: dict[str, Path]) -> None:
    report = analyze_video(clips["half_mkv"])

    assert {"truncated", "duration_mismatch"} <= report.failed_codes
    assert report.metrics["duration_deviation"] > 0.5


def test_damaged_packets_count_as_decode_errors(clips: dict[str, Path]) -> None:
    report = analyze_video(clips["damaged"])

    assert "decode_errors" in report.failed_codes
    assert report.metrics["decode_errors"] >= 1


def test_matroska_demuxer_stopping_at_damage_counts_as_a_decode_error(
    clips: dict[str, Path],
) -> None:
    report = analyze_video(clips["damaged_mkv"])

    # the demuxer raised nothing and every frame it delivered decoded: only the bytes it never
    # read show the 56 frames lost
    assert report.metrics["decoded_frames"] == 19
    assert report.scan is not None
    [(start, end)] = report.scan.unread_stretches
    assert end - start > 5_000
    clusters = matroska_clusters(clips["damaged_mkv"])
    assert clusters is not None and end == clusters[-1][1]  # the rest of the file went unread
    assert report.metrics["decode_errors"] == 1
    assert "decode_errors" in report.failed_codes
    assert not {"truncated", "decode_failed"} & report.failed_codes


@pytest.mark.parametrize(
    "clip",
    ["clean_mkv", "clean_h264_mkv", "walker_h264", "doubled_h264", "variable_rate", "clean"],
)
def test_clean_clips_leave_no_frame_bytes_unread(clips: dict[str, Path], clip: str) -> None:
    report = analyze_video(clips[clip])

    assert report.scan is not None and report.scan.unread_stretches == ()
    assert report.metrics["decode_errors"] == 0


def test_matroska_clusters_are_found_only_in_matroska(clips: dict[str, Path]) -> None:
    clusters = matroska_clusters(clips["clean_mkv"])

    assert clusters is not None and len(clusters) >= 1
    assert clusters[-1][1] <= clips["clean_mkv"].stat().st_size
    assert matroska_clusters(clips["clean"]) is None
    assert matroska_clusters(clips["random"]) is None


def test_packet_coverage_reports_skipped_cluster_bytes_only() -> None:
    # two clusters, 100-5100 and 6000-9000, with 900 bytes of cues between them
    coverage = PacketCoverage([(100, 5100), (6000, 9000)], min_bytes=512)
    coverage.add(120, 1000)  # block headers (20 bytes) between packets are no gap
    coverage.add(1140, 300)
    coverage.add(1140, 400)  # laced: a second frame of the same block
    coverage.add(1860, 0)  # an empty packet (a flush) covers nothing
    coverage.add(3000, 2000)  # 1140 bytes skipped
    coverage.add(6020, 1000)  # the 900 bytes of cues in between are not frames
    coverage.add(7030, 1000)

    assert coverage.unread() == [(1840, 3000), (8030, 9000)]


def test_packet_coverage_without_positions_reports_nothing() -> None:
    coverage = PacketCoverage([(0, 10_000)])
    coverage.add(None, 1000)

    assert coverage.unread() == []
    assert PacketCoverage([]).unread() == []


@pytest.mark.parametrize(
    ("clip", "code"),
    [("random", "unrecognized_format"), ("empty", "empty"), ("audio_only", "no_video_stream")],
)
def test_files_without_a_readable_video_say_why(
    clips: dict[str, Path], clip: str, code: str
) -> None:
    report = analyze_video(clips[clip])

    assert report.failed_codes == {code}
    assert report.corrupt and report.metrics == {}
    assert report.probe is None


def test_a_file_object_reads_like_its_path(clips: dict[str, Path]) -> None:
    data = clips["frozen"].read_bytes()
    stream = io.BytesIO(data)
    stream.seek(123)  # wherever the caller left it

    from_object = analyze_video(stream)
    from_path = analyze_video(clips["frozen"])

    assert from_object.metrics == from_path.metrics
    assert from_object.probe == from_path.probe
    with clips["half_mp4"].open("rb") as file:
        assert [c.code for c in container_problems(file)] == ["missing_index", "truncated"]


# ---- timing -----------------------------------------------------------------------------------


def test_variable_frame_rate_is_measured_from_timestamp_deltas(clips: dict[str, Path]) -> None:
    report = analyze_video(clips["variable_rate"])
    clean = analyze_video(clips["clean_mkv"])

    assert "variable_frame_rate" in report.failed_codes
    assert report.metrics["frame_interval_variation"] > 0.4
    assert report.metrics["frame_interval_ratio"] == pytest.approx(4.0)  # 80 ms over 20 ms
    assert report.metrics["duration_deviation"] < 0.01
    assert clean.metrics["frame_interval_variation"] == 0


def test_repeated_timestamp_is_reported_with_its_position(clips: dict[str, Path]) -> None:
    report = analyze_video(clips["repeated_timestamp"])

    assert report.scan is not None
    assert report.scan.non_increasing_timestamps == 1
    assert report.scan.first_non_increasing_frame == 20
    assert "non_increasing_timestamps" in report.failed_codes


def test_decreasing_and_missing_timestamps_are_counted_apart() -> None:
    thumbnail = np.zeros((THUMBNAIL_SIDE, THUMBNAIL_SIDE), np.uint8)
    times = [0.0, 0.04, 0.08, 0.06, None, 0.12, 0.16]
    frames = [DecodedFrame(i, t, 0.04, thumbnail + 40 * i) for i, t in enumerate(times)]

    scan = summarize_frames(frames)

    assert scan.non_increasing_timestamps == 1
    assert scan.first_non_increasing_frame == 3
    assert scan.missing_timestamps == 1
    # the step back takes no part in the rate: deltas 0.04, 0.04, 0.04, 0.04
    assert scan.mean_frame_rate == pytest.approx(25.0)
    assert scan.frame_interval_variation == pytest.approx(0.0, abs=1e-9)
    assert scan.decoded_duration == pytest.approx(0.2)


# ---- pictures ---------------------------------------------------------------------------------


def test_frozen_segment_is_reported_with_its_start_and_end(clips: dict[str, Path]) -> None:
    report = analyze_video(clips["frozen"])

    assert report.scan is not None
    [segment] = report.scan.frozen_segments
    assert segment.start == pytest.approx(0.48)
    assert segment.end == pytest.approx(3.0)
    assert "frozen" in report.failed_codes
    frozen = next(check for check in report.failures if check.code == "frozen")
    assert frozen.value == pytest.approx(2.52)
    assert frozen.threshold == 2.0
    assert analyze_video(clips["clean"]).metrics["longest_frozen_seconds"] == 0


def test_doubled_frames_are_duplicate_runs_not_a_freeze(clips: dict[str, Path]) -> None:
    report = analyze_video(clips["doubled"])

    assert "duplicate_frames" in report.failed_codes
    assert "frozen" not in report.failed_codes
    assert report.metrics["duplicate_frames"] == 37
    assert report.metrics["duplicate_frame_ratio"] == pytest.approx(37 / 75)
    assert report.metrics["longest_duplicate_run"] == 2


@pytest.mark.parametrize("clip", ["doubled", "doubled_h264"])
def test_doubled_frames_are_counted_in_either_codec(clips: dict[str, Path], clip: str) -> None:
    report = analyze_video(clips[clip])

    assert report.metrics["duplicate_frames"] == 37
    assert report.failed_codes == {"duplicate_frames"}


@pytest.mark.parametrize("clip", ["walker", "walker_h264", "pan"])
def test_small_subject_or_slow_pan_is_not_a_repeated_picture(
    clips: dict[str, Path], clip: str
) -> None:
    # a whole-picture mean moves by 0.1-0.6 levels a frame with the subject, 0.8-1.5 with the
    # pan: a mean tolerance of 1.0 took 75 % and 24 % of these frames for repeats
    report = analyze_video(clips[clip])

    assert report.metrics["duplicate_frames"] == 0
    assert report.metrics["longest_frozen_seconds"] < 0.5
    assert report.failures == ()


def test_frame_rate_conversion_by_repeated_frames_is_flagged(clips: dict[str, Path]) -> None:
    # one repeat in five (24 -> 30 fps) overstates the footage's rate; the default flags it
    report = analyze_video(clips["converted"])

    assert report.metrics["duplicate_frames"] == 14  # frames 5, 10, ..., 70
    assert report.metrics["duplicate_frame_ratio"] == pytest.approx(14 / 75)
    assert report.metrics["longest_duplicate_run"] == 2
    # each repeat is also a picture held between moving ones: the judder people see
    assert report.metrics["stutter_events"] == 14
    assert report.failed_codes == {"duplicate_frames", "stutter"}


def test_a_ticking_clock_overlay_does_not_hide_a_freeze(clips: dict[str, Path]) -> None:
    report = analyze_video(clips["frozen_clock"])

    assert report.scan is not None
    [segment] = report.scan.frozen_segments
    assert segment.seconds == pytest.approx(3.0)
    assert "frozen" in report.failed_codes
    # each tick changes the picture, so the frames around it are not repeats
    assert report.metrics["duplicate_frames"] == 72


def test_a_repeat_tolerates_codec_noise_but_no_local_change() -> None:
    rng = np.random.default_rng(0)
    picture = rng.integers(20, 230, (THUMBNAIL_SIDE, THUMBNAIL_SIDE), np.uint8)
    noisy = (picture + rng.integers(-3, 4, picture.shape)).astype(np.uint8)
    moved = noisy.copy()
    moved[30:34, 30] += 10  # the edge of a small subject: 4 pixels of 4096
    patch = noisy.copy()
    patch[:4, :5] = 255  # a clock digit: 20 pixels

    assert DUPLICATE_TOLERANCE.same(picture, noisy)
    assert not DUPLICATE_TOLERANCE.same(picture, moved)
    assert FROZEN_TOLERANCE.same(picture, moved)
    assert FROZEN_TOLERANCE.same(picture, patch)
    assert not FROZEN_TOLERANCE.same(picture, scene(1)[:64, :64, 0])


def test_black_frames_are_counted(clips: dict[str, Path]) -> None:
    report = analyze_video(clips["black"])

    assert report.metrics["black_frames"] == 25
    assert report.metrics["black_frame_ratio"] == pytest.approx(1 / 3)
    assert "black_frames" in report.failed_codes
    # black frames are not counted again as blank, nor as repeats of the black before them
    assert "blank_frames" not in report.failed_codes
    assert report.metrics["duplicate_frames"] == 0


def test_flat_grey_frames_are_blank_not_black(clips: dict[str, Path]) -> None:
    report = analyze_video(clips["blank"])

    assert report.metrics["blank_frames"] == 25
    assert report.metrics["black_frames"] == 0
    assert report.failed_codes == {"blank_frames"}


def test_a_changed_policy_rejudges_stored_metrics_without_decoding(
    clips: dict[str, Path],
) -> None:
    stored = dict(analyze_video(clips["frozen"]).metrics)
    lenient = {**DEFAULT_VIDEO_THRESHOLDS}
    lenient["frozen"] = Threshold("longest_frozen_seconds", 3.0, "above", "video freezes")

    strict = {**DEFAULT_VIDEO_THRESHOLDS}
    strict["frozen"] = Threshold("longest_frozen_seconds", 0.5, "above", "video freezes")

    results = {check.code: check.passed for check in judge_metrics(stored, lenient)}
    assert results["frozen"] is True
    # the longest still run is stored even below the 2 s that makes a listed frozen segment
    still = analyze_video(clips["rotated"]).metrics
    assert {check.code: check.passed for check in judge_metrics(still, strict)}["frozen"] is False


# ---- sampling for labeling --------------------------------------------------------------------


def test_sampling_every_second_takes_one_frame_a_second(clips: dict[str, Path]) -> None:
    samples = list(sample_frames(clips["clean"], every_seconds=1.0))

    assert [s.timestamp for s in samples] == pytest.approx([0.0, 1.0, 2.0])
    assert [s.frame_index for s in samples] == [0, 25, 50]
    picture = cv2.imdecode(np.frombuffer(samples[1].jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None
    assert picture.shape == (HEIGHT, WIDTH, 3)


def test_sampling_skips_a_static_stretch(clips: dict[str, Path]) -> None:
    samples = list(sample_frames(clips["static_stretch"], every_seconds=1.0))

    # 2.0 s and 3.0 s show the picture already sampled at 1.0 s
    assert [s.timestamp for s in samples] == pytest.approx([0.0, 1.0, 4.0])


def test_sampling_on_scene_change_takes_the_cut(clips: dict[str, Path]) -> None:
    samples = list(sample_frames(clips["cut"], None, scene_change=SCENE_CHANGE_DIFFERENCE))

    assert [s.timestamp for s in samples] == pytest.approx([0.0, 1.4])


def test_sampled_frames_are_turned_upright(clips: dict[str, Path]) -> None:
    [only] = sample_frames(clips["rotated"])  # one still picture: one sample

    picture = cv2.imdecode(np.frombuffer(only.jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert picture is not None
    assert picture.shape == (WIDTH, HEIGHT)
    # a counter-clockwise quarter turn takes the stored top-left corner to the bottom-left
    assert picture[-30:, :20].mean() > 200
    assert picture[:30, :20].mean() < 50


def test_sampling_schedule_keeps_to_its_grid_across_a_gap() -> None:
    schedule = SamplingSchedule(every_seconds=1.0)
    times = [0.0, 0.5, 1.0, 1.5, 3.7, 3.9, 4.0, 4.5]
    pictures = [np.full((THUMBNAIL_SIDE, THUMBNAIL_SIDE), 20 * i, np.uint8) for i in range(8)]

    taken = [t for t, p in zip(times, pictures, strict=True) if schedule.takes(t, p)]

    assert taken == [0.0, 1.0, 3.7, 4.0]


def test_sampling_a_file_without_video_says_why(clips: dict[str, Path]) -> None:
    with pytest.raises(UnreadableVideo) as raised:
        next(sample_frames(clips["audio_only"]))
    assert raised.value.code == "no_video_stream"


def test_sampling_needs_a_rule() -> None:
    with pytest.raises(ValueError, match="scene change"):
        next(sample_frames("unused.mp4", every_seconds=None, scene_change=None))
