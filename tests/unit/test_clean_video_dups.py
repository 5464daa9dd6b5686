"""Duplicate videos: fingerprints made from generated thumbnails (what the decode pass feeds the
hasher), their alignment in seconds, and the per-dataset index. No video is encoded here."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from services.clean.checks.video.fingerprint import (
    MIN_OVERLAP_SECONDS,
    SAMPLE_PERIOD,
    FrameHasher,
    VideoSignature,
    align,
)
from services.clean.video_index import DatasetVideos, StoredSignature, VideoIndex

Thumb = NDArray[np.uint8]
# a range ends between two samples, and a copy's frames sit up to a frame away from the source's
TOLERANCE = SAMPLE_PERIOD / 2 + 0.04
Picture = Callable[[float], Thumb]


def texture(seed: int, width: int, height: int) -> NDArray[np.float32]:
    """A smooth random luma field (a photo-like backdrop)."""
    noise = np.random.default_rng(seed).uniform(0, 255, (height // 8, width // 8))
    smooth = cv2.resize(noise.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    return np.asarray(smooth, np.float32)


def panning(seed: int, speed: float = 40.0, direction: float = 1.0) -> Picture:
    """A 64 x 64 window sliding across a texture at ``speed`` pixels a second."""
    field = texture(seed, 2400, 64)

    def at(t: float) -> Thumb:
        left = round(1100 + direction * speed * t)
        return np.clip(field[:, left : left + 64], 0, 255).astype(np.uint8)

    return at


def walking(seed: int, subject_seed: int) -> Picture:
    """A still backdrop that a mid-grey subject (8 x 20 pixels) walks across."""
    field = np.clip(texture(seed, 64, 64), 0, 255).astype(np.uint8)
    rng = np.random.default_rng(subject_seed)
    top, start, pace = int(rng.integers(10, 40)), float(rng.uniform(0, 20)), rng.uniform(6, 10)
    level = int(rng.integers(20, 235))

    def at(t: float) -> Thumb:
        picture = field.copy()
        left = int(start + pace * t) % 56
        picture[top : top + 20, left : left + 8] = level
        return picture

    return at


def faint_walking(seed: int, subject_seed: int) -> Picture:
    """A still backdrop that a small subject (5 x 12 pixels) a few levels off the backdrop
    walks across: no 8 x 8 block mean changes by more than a few levels."""
    field = texture(seed, 64, 64)
    rng = np.random.default_rng(subject_seed)
    top, start = int(rng.integers(8, 44)), float(rng.uniform(4, 20))
    pace, lift = rng.uniform(5, 8), float(rng.choice([-1.0, 1.0]) * rng.uniform(18, 24))

    def at(t: float) -> Thumb:
        picture = field.copy()
        left = int(start + pace * t) % 56
        picture[top : top + 12, left : left + 5] += lift
        return np.clip(picture, 0, 255).astype(np.uint8)

    return at


def signature(
    picture: Picture, start: float, end: float, rate: float, noise: float = 1.0, seed: int = 0
) -> VideoSignature:
    """The fingerprint of ``picture`` from ``start`` to ``end`` seconds at ``rate`` frames a
    second (timestamps from 0), with codec-like noise on every thumbnail."""
    rng = np.random.default_rng(seed)
    hasher = FrameHasher()
    frames = round((end - start) * rate)
    for index in range(frames):
        thumb = picture(start + index / rate).astype(np.float32)
        thumb += rng.normal(0, noise, thumb.shape).astype(np.float32)
        hasher.add(index / rate, np.clip(thumb, 0, 255).astype(np.uint8))
    return hasher.signature().from_start(0.0, frames / rate)


def test_samples_are_eight_a_second_whatever_the_frame_rate() -> None:
    for rate in (24.0, 25.0, 30.0, 60.0):
        made = signature(panning(1), 0, 10, rate)
        assert len(made) == 80
        assert np.all(np.diff(made.times) < SAMPLE_PERIOD + 1 / rate)


def test_a_copy_trimmed_at_both_ends_gives_its_place_in_the_original() -> None:
    original = signature(panning(2), 0, 10, 25)
    copy = signature(panning(2), 2.3, 8.1, 25, seed=1)

    found = align(copy, original)

    assert found is not None
    assert found.start == pytest.approx(0.0, abs=TOLERANCE)
    assert found.end == pytest.approx(5.8, abs=TOLERANCE)
    assert found.other_start == pytest.approx(2.3, abs=TOLERANCE)
    assert found.other_end == pytest.approx(8.1, abs=TOLERANCE)


def test_the_original_arriving_after_its_trimmed_copy_is_found_the_other_way() -> None:
    copy = signature(panning(3), 1.7, 9.0, 30)
    original = signature(panning(3), 0, 12, 25, seed=2)

    found = align(original, copy)

    assert found is not None
    assert found.start == pytest.approx(1.7, abs=TOLERANCE)
    assert found.end == pytest.approx(9.0, abs=TOLERANCE)
    assert (found.other_start, found.other_end) == pytest.approx((0.0, 7.3), abs=TOLERANCE)


def test_another_frame_rate_and_stronger_noise_still_align() -> None:
    original = signature(panning(4, speed=30), 0, 9, 30)
    copy = signature(panning(4, speed=30), 1.15, 9, 24, noise=2.5, seed=3)

    found = align(copy, original)

    assert found is not None
    assert found.offset == pytest.approx(1.15, abs=TOLERANCE)


@pytest.mark.parametrize("subject", [0, 1, 11])
def test_a_static_camera_copy_trimmed_between_samples_is_found_at_its_offset(
    subject: int,
) -> None:
    # every sample of a still backdrop hash-matches every moment of the original: only the
    # closest hashes may vote, or the true offset is never tried
    clip = walking(20 + subject, subject_seed=subject)
    original = signature(clip, 0, 9, 25)
    cut = 1.74  # not a multiple of the sampling period
    copy = signature(clip, cut, 9, 30, seed=1)

    found = align(copy, original)

    assert found is not None
    assert found.offset == pytest.approx(cut, abs=TOLERANCE)
    assert (found.start, found.other_start) == pytest.approx((0.0, cut), abs=TOLERANCE)


def test_the_same_backdrop_with_other_motion_is_no_duplicate() -> None:
    assert (
        align(signature(panning(5, direction=-1), 0, 8, 25), signature(panning(5), 0, 8, 25))
        is None
    )
    slower = signature(panning(5, speed=15), 0, 8, 25)
    assert align(slower, signature(panning(5), 0, 8, 25)) is None


def test_a_static_camera_with_another_subject_is_no_duplicate() -> None:
    first = signature(walking(6, subject_seed=1), 0, 8, 25)
    second = signature(walking(6, subject_seed=2), 0, 8, 25, seed=1)
    assert align(second, first) is None
    # while a re-encode of the first (other noise) is
    assert align(signature(walking(6, subject_seed=1), 0, 8, 25, seed=3), first) is not None


def test_a_slideshow_of_stills_from_a_clip_is_no_duplicate() -> None:
    clip = panning(7)
    moments = (0.5, 2.5, 4.5, 6.5)
    slideshow = signature(lambda t: clip(moments[min(int(t / 2), 3)]), 0, 8, 25)
    assert align(slideshow, signature(clip, 0, 8, 25)) is None


@pytest.mark.parametrize("subject", [1, 2, 3])
def test_a_slideshow_of_a_clip_with_a_small_faint_subject_is_no_duplicate(subject: int) -> None:
    # the 8 x 8 means barely see the subject: the stills differ from the clip only in the
    # finer grid's motion (frozen where the clip moves)
    clip = faint_walking(30 + subject, subject_seed=subject)
    original = signature(clip, 0, 9, 25)
    moments = (0.6, 2.6, 4.7, 6.8)
    slideshow = signature(lambda t: clip(moments[min(int(t / 2.2), 3)]), 0, 8.8, 25, seed=1)
    coarse = VideoSignature(slideshow.times, slideshow.hashes, slideshow.blocks, 8.8)
    assert align(coarse, original) is not None  # what the 8 x 8 means alone decided
    assert align(slideshow, original) is None
    assert align(original, slideshow) is None
    # while a copy at another rate, with other noise, is found
    found = align(signature(clip, 0, 9, 30, noise=2.0, seed=2), original)
    assert found is not None
    assert (found.start, found.end, found.offset) == pytest.approx((0, 9, 0), abs=TOLERANCE)


def test_sharing_less_than_the_minimum_overlap_is_no_duplicate() -> None:
    clip, other = panning(8), panning(9)
    shared = MIN_OVERLAP_SECONDS - 0.6
    mixed = signature(lambda t: clip(t) if t < shared else other(t), 0, 6, 25)
    assert align(mixed, signature(clip, 0, 6, 25)) is None


def test_a_signature_survives_being_stored() -> None:
    made = signature(panning(10), 0, 3, 25)
    again = VideoSignature.unpack(made.pack(), made.duration, made.pack_fine())
    times = np.round(made.times, 3)
    assert again == VideoSignature(times, made.hashes, made.blocks, 3.0, made.fine)
    # a row stored before the finer grid reads back without it, and aligns on the rest
    older = VideoSignature.unpack(made.pack(), made.duration)
    assert older.fine is None
    assert older == VideoSignature(times, made.hashes, made.blocks, 3.0)
    assert align(older, made) is not None
    with pytest.raises(ValueError, match="fine block means"):
        VideoSignature.unpack(made.pack(), made.duration, b"\0" * 5)


def test_the_index_names_the_earlier_video_with_the_longest_shared_footage() -> None:
    videos = DatasetVideos()
    first, unrelated = uuid.uuid4(), uuid.uuid4()
    videos.add(StoredSignature(1, unrelated, signature(panning(11), 0, 8, 25)))
    videos.add(StoredSignature(2, first, signature(panning(12), 0, 10, 25)))

    found = videos.find(signature(panning(12), 3.0, 10, 30, seed=4))

    assert found is not None
    assert found.asset_id == first
    assert found.overlap.other_start == pytest.approx(3.0, abs=TOLERANCE)
    assert videos.find(signature(panning(13), 0, 8, 25)) is None


def test_the_index_drops_the_least_recently_used_datasets_past_its_bytes() -> None:
    clip = signature(panning(21), 0, 4, 25)
    one = DatasetVideos()
    one.add(StoredSignature(1, uuid.uuid4(), clip))
    index = VideoIndex(max_bytes=2 * one.nbytes + 1)
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for ident in (a, b, c):
        index.dataset(ident).add(StoredSignature(1, uuid.uuid4(), clip))
    index.dataset(a)  # used again: b is now the least recently used
    index.trim()
    assert len(index.dataset(a)) == 1 and len(index.dataset(c)) == 1
    assert len(index.dataset(b)) == 0  # dropped, so it comes back empty (read again later)

    huge = VideoIndex(max_bytes=1)
    huge.dataset(a).add(StoredSignature(1, uuid.uuid4(), clip))
    huge.trim()
    assert len(huge.dataset(a)) == 1  # the copy in use is kept whatever its size
