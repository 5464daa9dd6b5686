"""Defects judged in context: ghost frames (blends, combing), stutters and black gaps, and the
time ranges every video check names.

Frames are made in memory (no encoding) and folded by the pure :func:`summarize_frames`, the
same fold the decode pass feeds; one clip is encoded to see the ranges reach a report.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from services.clean import domain
from services.clean.checks.thresholds import (
    MAX_RANGES,
    Threshold,
    judge_metrics,
    located,
    ranges_by_code,
)
from services.clean.checks.video import analyze_video
from services.clean.checks.video.frame_scan import DecodedFrame, VideoScan, summarize_frames
from services.clean.checks.video.ghosts import DETAIL_WIDTH
from services.clean.checks.video.interruptions import TimeRanges
from services.clean.policy import PolicyRules, judge
from tests.media_video import flat, landscape, scene, write_clip

RATE = 25
Pixels = NDArray[np.uint8]


def observed(pictures: list[Pixels]) -> list[DecodedFrame]:
    """Frames as the decode pass hands them over: 64x64 thumbnail and detail picture."""
    frames = []
    for index, picture in enumerate(pictures):
        gray = cv2.cvtColor(picture, cv2.COLOR_RGB2GRAY)
        height, width = gray.shape
        thumbnail = np.asarray(cv2.resize(gray, (64, 64), interpolation=cv2.INTER_AREA), np.uint8)
        detail = np.asarray(
            cv2.resize(gray, (min(DETAIL_WIDTH, width), height), interpolation=cv2.INTER_AREA),
            np.uint8,
        )
        frames.append(DecodedFrame(index, index / RATE, 1 / RATE, thumbnail, detail))
    return frames


def scan(pictures: list[Pixels]) -> VideoScan:
    return summarize_frames(observed(pictures))


def blocks(frames: int, step: int = 3, seed: int = 1) -> list[Pixels]:
    """Coloured blocks sliding ``2 * step`` pixels a frame at 160x120: clearly moving."""
    return [scene(step * f, seed) for f in range(frames)]


def glide(frames: int, pixels_per_frame: float) -> list[Pixels]:
    """A smooth scene panned at sub-pixel positions (bilinear): a slow camera."""
    backdrop = landscape(400, 160, seed=4)
    pictures = []
    for f in range(frames):
        shift = np.array([[1, 0, -pixels_per_frame * f], [0, 1, 0]], dtype=np.float32)
        moved = cv2.warpAffine(backdrop, shift, (160, 120))
        pictures.append(np.asarray(moved, dtype=np.uint8))
    return pictures


def mix(first: Pixels, second: Pixels, weight: float) -> Pixels:
    return (first * (1 - weight) + second * weight + 0.5).astype(np.uint8)


def weave(early: Pixels, late: Pixels, top_first: bool = True) -> Pixels:
    """One frame from two moments: even rows from the first field's, odd from the second's."""
    woven = early.copy()
    rows = slice(1, None, 2) if top_first else slice(0, None, 2)
    woven[rows] = late[rows]
    return woven


# ---- ghost frames ----------------------------------------------------------------------------


def test_a_blend_inserted_every_fifth_frame_is_found_where_it_is() -> None:
    source = blocks(60)
    pictures: list[Pixels] = []
    for f in range(len(source) - 1):
        pictures.append(source[f])
        if f % 4 == 3:
            pictures.append(mix(source[f], source[f + 1], 0.5))

    found = scan(pictures)

    inserted = [i for i in range(len(pictures)) if i % 5 == 4]
    assert found.blended_frames == pytest.approx(len(inserted), abs=1)
    assert found.combed_frames == 0
    starts = [start for start, _ in found.ranges["blended_frames"]]
    assert starts[:5] == pytest.approx([i / RATE for i in inserted[:5]])


def test_frame_rate_conversion_by_weighted_blending_is_flagged() -> None:
    source = blocks(80)
    pictures = []
    for k in range(90):  # 24 -> 30 fps: each output frame mixes the two source frames around it
        position = k * 0.8
        pictures.append(mix(source[int(position)], source[int(position) + 1], position % 1))

    found = scan(pictures)

    assert found.blended_frames / found.decoded_frames > 0.2


@pytest.mark.parametrize("kind", ["dissolve", "fade", "slow pan", "motion"])
def test_dissolves_fades_slow_pans_and_motion_are_not_blends(kind: str) -> None:
    moving = blocks(75)
    if kind == "dissolve":  # a second-long cross-fade between two moving shots
        other = blocks(75, seed=9)
        pictures = [
            mix(a, b, min(max((f - 25) / 25, 0), 1))
            for f, (a, b) in enumerate(zip(moving, other, strict=True))
        ]
    elif kind == "fade":
        pictures = [mix(p, flat(0), min(f / 40, 1.0)) for f, p in enumerate(moving)]
    elif kind == "slow pan":
        pictures = glide(75, 0.6)
    else:
        pictures = moving

    assert scan(pictures).blended_frames <= 1


@pytest.mark.parametrize("top_first", [True, False])
def test_fields_from_two_moments_comb(top_first: bool) -> None:
    fields = blocks(120, step=1)
    pictures = [weave(fields[2 * k], fields[2 * k + 1], top_first) for k in range(60)]

    found = scan(pictures)

    assert found.combed_frames / found.decoded_frames > 0.8
    assert found.ranges["combed_frames"][0][0] <= 2 / RATE


def test_fine_horizontal_stripes_and_scrolling_lines_do_not_comb() -> None:
    striped = []
    for picture in blocks(50):
        picture = picture.copy()
        picture[20:80:2] //= 3  # venetian blinds: every other row dark
        striped.append(picture)
    sheet = np.full((400, 160, 3), 30, np.uint8)
    sheet[::6] = 230  # ruled lines, one row thick, scrolling up 3 rows a frame
    scrolling = [np.ascontiguousarray(sheet[3 * f : 3 * f + 120]) for f in range(50)]

    assert scan(striped).combed_frames <= 1
    assert scan(scrolling).combed_frames <= 1


def test_frames_without_a_detail_picture_skip_the_ghost_checks() -> None:
    frames = [
        DecodedFrame(f.index, f.timestamp, f.duration, f.thumbnail)
        for f in observed([weave(a, b) for a, b in zip(blocks(20), blocks(20)[1:], strict=False)])
    ]

    found = summarize_frames(frames)

    assert (found.blended_frames, found.combed_frames) == (0, 0)


# ---- stutters and black gaps -------------------------------------------------------------------


def test_a_picture_held_in_moving_footage_is_a_stutter_with_its_range() -> None:
    pictures = blocks(50)
    pictures[20:22] = [pictures[19]] * 2  # shown three times: two frames lost

    found = scan(pictures)

    assert found.stutter_events == 1
    [held] = found.ranges["stutter"]
    assert held == pytest.approx((19 / RATE, 22 / RATE))


def test_every_picture_twice_or_a_slow_subject_is_not_a_stutter() -> None:
    doubled = [p for p in blocks(30) for _ in range(2)]
    slow = glide(60, 0.3)

    assert scan(doubled).stutter_events == 0
    assert scan(doubled).duplicate_frames == 30
    assert scan(slow).stutter_events == 0


def test_a_cut_to_black_between_moving_pictures_is_a_gap() -> None:
    pictures = blocks(75)
    pictures[30:38] = [flat(0)] * 8  # 0.32 s

    found = scan(pictures)

    assert found.black_gaps == 1
    [gap] = found.ranges["black_gap"]
    assert gap == pytest.approx((30 / RATE, 38 / RATE))
    assert found.ranges["black_frames"] == found.ranges["black_gap"]


@pytest.mark.parametrize("kind", ["fade through black", "too short", "at the start", "at the end"])
def test_fades_short_cuts_and_black_ends_are_not_gaps(kind: str) -> None:
    pictures = blocks(75)
    if kind == "fade through black":  # 0.4 s down, 0.32 s black, 0.4 s up
        gains = [min(1.0, max(0, abs(f - 37) - 4) / 10) for f in range(75)]
        pictures = [mix(flat(0), p, g) for p, g in zip(pictures, gains, strict=True)]
    elif kind == "too short":
        pictures[30:34] = [flat(0)] * 4  # 0.16 s
    elif kind == "at the start":
        pictures[:10] = [flat(0)] * 10
    else:
        pictures[-10:] = [flat(0)] * 10

    assert scan(pictures).black_gaps == 0


# ---- ranges --------------------------------------------------------------------------------------


def test_time_ranges_merge_touching_ones_and_keep_the_first_few() -> None:
    ranges = TimeRanges()
    ranges.add(1.0, 1.04)
    ranges.add(1.04, 1.08)
    ranges.add(2.0, None)
    for second in range(3, 3 + 2 * MAX_RANGES):
        ranges.add(float(second), second + 0.5)

    kept = ranges.ranges()

    assert kept[:2] == ((1.0, 1.08), (2.0, 2.0))
    assert len(kept) == MAX_RANGES


def test_judged_results_carry_their_ranges_and_a_re_judgement_keeps_them() -> None:
    threshold = {"stutter": Threshold("stutter_events", 0.0, "above", "stutters")}
    ranges = {"stutter": ((1.0, 1.2),)}

    [result] = judge_metrics({"stutter_events": 1.0}, threshold, ranges)
    verdict = judge(
        {"stutter_events": 1.0}, [located("stutter", ranges["stutter"])], None, PolicyRules()
    )

    assert result.ranges == ((1.0, 1.2),)
    assert [(flag.code, flag.ranges) for flag in verdict.flags] == [("stutter", ((1.0, 1.2),))]
    assert ranges_by_code([located("stutter", ((1.0, 1.2),)), result]) == ranges


def test_a_stored_video_report_re_judges_to_the_same_verdict(tmp_path: Path) -> None:
    pictures = [scene(2 * f) for f in range(75)]
    pictures[30:38] = [flat(0)] * 8
    report = analyze_video(write_clip(tmp_path / "gap.mp4", pictures))
    findings = domain.video_findings(report)
    rules = PolicyRules()
    judged = domain.verdict(findings, None, rules)
    row = domain.report_row(uuid.uuid4(), uuid.uuid4(), "video/mp4", findings, 1, None, judged, 0)

    class Stored:
        """The report as read back from its JSONB columns."""

        status = row["status"]
        metrics = json.loads(json.dumps(row["metrics"]))
        structural = json.loads(json.dumps(row["structural"]))
        reasons = json.loads(json.dumps(row["reasons"]))
        flags = json.loads(json.dumps(row["flags"]))
        duplicate_of = None
        duplicate_code = None
        duplicate_distance = None
        duplicate_overlap = None

    [gap] = [flag for flag in row["flags"] if flag["code"] == "black_gap"]
    assert gap["ranges"] == [[pytest.approx(1.2, abs=0.05), pytest.approx(1.52, abs=0.05)]]
    assert domain.changed_verdict(Stored(), rules) is None
    assert all("ranges" not in check or check["ranges"] for check in row["flags"])
