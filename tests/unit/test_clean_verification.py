"""Verification of near-duplicate candidates (services/clean/checks/verification.py) and the
two-stage decision around it (stage-1 candidates, domain.near_duplicate), on generated images."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from services.clean import domain
from services.clean.checks import (
    CROP_REGIONS,
    MAX_CANDIDATES,
    NEAR_DUPLICATE_RADIUS,
    VERIFY_RADIUS,
    Features,
    compare_pictures,
    crop_hashes,
    hamming_distance,
    image_features,
    near_candidates,
    perceptual_hash,
    verify,
)
from services.clean.checks.fingerprint import FAR_CROP_RADIUS, OLD_CROP_REGIONS, Candidate
from services.clean.checks.quality import luminance
from services.clean.checks.verification import (
    MAX_CHANGED,
    MAX_DETAIL_CHANGED,
    structured,
    verifiable,
)
from services.clean.domain import Findings
from services.clean.near_index import DatasetHashes, HashRows
from services.clean.policy import Duplicate, PolicyRules

Gray = NDArray[np.uint8]
AREA = cv2.INTER_AREA
FINE = {"structure_fraction": 0.5, "mean_luminance": 120.0}


def scene(seed: int, width: int = 640, height: int = 480) -> Gray:
    """A busy grayscale picture: shapes of many sizes over a textured ramp."""
    rng = np.random.default_rng(seed)
    image = np.linspace(60, 190, width, dtype=np.float32)[None, :].repeat(height, 0)
    image += cv2.GaussianBlur(rng.normal(0, 25, (height, width)).astype(np.float32), (0, 0), 2)
    for _ in range(60):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        shade = float(rng.integers(0, 256))
        if rng.random() < 0.5:
            cv2.circle(image, (x, y), int(rng.integers(4, 40)), shade, -1)
        else:
            w, h = int(rng.integers(6, 90)), int(rng.integers(6, 70))
            cv2.rectangle(image, (x, y), (x + w, y + h), shade, -1)
    return np.clip(image, 0, 255).astype(np.uint8)


def normalized(gray: Gray) -> Gray:
    """What the service measures on: the long side at most 512 pixels, area-averaged."""
    height, width = gray.shape
    factor = min(1.0, 512 / max(width, height))
    size = (round(width * factor), round(height * factor))
    return np.asarray(cv2.resize(gray, size, interpolation=cv2.INTER_AREA), np.uint8)


def features(gray: Gray) -> Features:
    return image_features(normalized(gray))


def rotated(gray: Gray, degrees: float) -> Gray:
    height, width = gray.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    turned = cv2.warpAffine(gray, matrix, (width, height), borderMode=cv2.BORDER_REFLECT_101)
    return np.asarray(turned, np.uint8)


def jpeg(gray: Gray, quality: int) -> Gray:
    _, data = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return np.asarray(cv2.imdecode(data, cv2.IMREAD_GRAYSCALE), np.uint8)


ORIGINAL = scene(1)


def test_a_twenty_percent_corner_crop_verifies_with_the_scale_of_the_crop() -> None:
    crop = ORIGINAL[:384, 128:]  # 80 % of each side, top right
    found = verify(features(crop), features(ORIGINAL))
    assert found.same, found
    assert found.scale == pytest.approx(0.8, abs=0.03)  # the crop's long side is 80 % of it
    assert abs(found.degrees) < 1


def test_a_five_degree_rotation_reencoded_at_quality_50_verifies() -> None:
    found = verify(features(jpeg(rotated(ORIGINAL, 5.0), 50)), features(ORIGINAL))
    assert found.same, found
    assert abs(found.degrees) == pytest.approx(5.0, abs=1.0)


def test_a_watermarked_copy_verifies() -> None:
    marked = ORIGINAL.copy()
    cv2.putText(marked, "SAMPLE", (380, 450), cv2.FONT_HERSHEY_SIMPLEX, 1.5, 255, 3)
    assert verify(features(marked), features(ORIGINAL)).same


def test_a_large_watermark_across_the_frame_verifies() -> None:
    # white letters over most of the width at 60 %: 5.6 % of the thumbnail changed, beyond
    # MAX_CHANGED on their own, and left out as a watermark
    lettered = ORIGINAL.copy()
    cv2.putText(lettered, "SAMPLE", (60, 250), cv2.FONT_HERSHEY_SIMPLEX, 3, 255, 9)
    marked = np.asarray(cv2.addWeighted(lettered, 0.6, ORIGINAL, 0.4, 0), np.uint8)
    found = verify(features(marked), features(ORIGINAL))
    assert found.same, found
    assert found.changed <= MAX_CHANGED


def test_a_band_changed_both_ways_is_not_taken_for_a_watermark() -> None:
    # a strip of the frame with other content (lighter and darker than before), where a
    # watermark would be: a changed subject, not text in one colour
    other = ORIGINAL.copy()
    other[300:380, 60:580] = scene(4, 520, 80)
    found = verify(features(other), features(ORIGINAL))
    assert not found.same
    assert found.changed > MAX_CHANGED


def test_an_unrelated_picture_does_not_verify() -> None:
    assert not verify(features(scene(2)), features(ORIGINAL)).same


def test_the_same_background_with_another_subject_does_not_verify() -> None:
    other = ORIGINAL.copy()
    other[120:360, 160:480] = scene(3, 320, 240)  # a quarter of the frame replaced
    found = verify(features(other), features(ORIGINAL))
    assert not found.same
    assert found.reason == "the pictures differ"


WORDS = ("total", "order", "status", "invoice", "account", "report", "export", "review", "draft")


def screen(text_seed: int, width: int = 480, height: int = 640) -> Gray:
    """A screenshot: a header with buttons, a menu and two panels of 6-pixel text; the
    template is fixed, the panels' words and numbers come from ``text_seed``."""
    image = np.full((height, width), 245, np.uint8)
    image[:56] = 70
    image[56:, :100] = 220
    font, menu = cv2.FONT_HERSHEY_SIMPLEX, np.random.default_rng(0)
    cv2.putText(image, "Conveyor", (110, 38), font, 0.7, 250, 2)
    for x in range(300, 470, 40):
        cv2.rectangle(image, (x, 14), (x + 30, 42), 200, -1)
        cv2.circle(image, (x + 15, 28), 6, 60, -1)
    for y in range(80, height, 22):
        word = WORDS[int(menu.integers(len(WORDS)))]
        cv2.putText(image, word, (8, y), font, 0.4, 40, 1, cv2.LINE_AA)
    rng = np.random.default_rng(text_seed)
    for top, title in ((150, "summary"), (390, "details")):
        cv2.rectangle(image, (115, top), (470, top + 200), 235, -1)
        cv2.rectangle(image, (115, top), (470, top + 200), 180, 1)
        cv2.putText(image, title, (121, top + 16), font, 0.45, 40, 1, cv2.LINE_AA)
        for y in range(top + 34, top + 195, 15):
            words = " ".join(WORDS[int(i)] for i in rng.integers(0, len(WORDS), 5))
            line = f"{words} {int(rng.integers(0, 99999)):,}"
            cv2.putText(image, line, (121, y), font, 0.34, 40, 1, cv2.LINE_AA)
    return image


SCREEN = screen(10)


def test_a_screenshot_with_other_small_text_does_not_verify() -> None:
    # the template's keypoints agree and the thumbnail cannot see 6-pixel letters: only the
    # detail pictures tell the panels' text apart
    found = verify(features(screen(11)), features(SCREEN))
    assert not found.same, found
    assert found.reason == "the details differ"
    assert found.changed <= MAX_CHANGED and found.detail_changed > MAX_DETAIL_CHANGED


@pytest.mark.parametrize(
    "copy",
    [
        lambda gray: jpeg(gray, 50),
        lambda gray: jpeg(np.asarray(cv2.resize(gray, (240, 320), None, 0, 0, AREA), np.uint8), 85),
        lambda gray: rotated(gray, 3.0),
    ],
    ids=["quality-50", "half-size", "rotated-3"],
)
def test_a_reencoded_resized_or_rotated_screenshot_verifies(copy: Callable[[Gray], Gray]) -> None:
    found = verify(features(copy(SCREEN)), features(SCREEN))
    assert found.same, found
    assert found.detail_changed <= MAX_DETAIL_CHANGED


def test_features_stored_before_the_detail_pictures_verify_as_before() -> None:
    # format 1 (thumbnail only): the sibling passes the checks it had then
    sibling, mine = features(screen(11)), features(SCREEN)
    old_form = Features.unpacked(replace(mine, detail=None).packed())
    assert old_form.detail is None and old_form.thumbnail.shape == mine.thumbnail.shape
    found = verify(sibling, old_form)
    assert found.same and found.detail_changed == 0.0


def test_a_flat_picture_has_too_few_keypoints_to_verify() -> None:
    flat = np.full((480, 640), 128, np.uint8)
    assert verify(features(flat), features(ORIGINAL)).reason == "too few keypoints"


def test_features_survive_packing_and_stay_a_few_kilobytes() -> None:
    mine = features(ORIGINAL)
    packed = mine.packed()
    assert len(packed) <= 20_000  # a noisy scene: the detail picture's JPEG is most of it
    back = Features.unpacked(packed)
    assert (back.width, back.height) == (mine.width, mine.height)
    assert np.array_equal(back.descriptors, mine.descriptors)
    assert np.allclose(back.points, mine.points, atol=1e-4)
    # the pictures are stored as a JPEG: a few levels off, far under PIXEL_DIFFERENCE
    assert back.detail is not None and mine.detail is not None
    assert back.detail.shape == mine.detail.shape == (192, 256)
    assert np.abs(back.detail.astype(int) - mine.detail.astype(int)).mean() < 4
    difference = np.abs(back.thumbnail.astype(int) - mine.thumbnail.astype(int))
    assert back.thumbnail.shape == mine.thumbnail.shape and difference.mean() < 3


@pytest.mark.parametrize("damaged", [b"", b"\x01\x00", b"\x09" + bytes(40)])
def test_damaged_stored_features_are_refused_with_a_clear_error(damaged: bytes) -> None:
    with pytest.raises(ValueError, match="stored features"):
        Features.unpacked(damaged)


# ---- stage 1: candidates ---------------------------------------------------------------------


def rows(hashes: list[int]) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
    full = np.array(hashes, np.uint64)
    return full, np.repeat(full[:, None], len(CROP_REGIONS), axis=1)


def test_candidates_come_closest_first_then_first_arrived_and_are_bounded() -> None:
    base = 0x0123_4567_89AB_CDEF
    flipped = [base ^ ((1 << bits) - 1) for bits in (12, 3, 12, 30)]
    found = near_candidates(base, [], *rows(flipped))
    assert [c.row for c in found] == [1, 0, 2]  # 30 bits is beyond the radius
    many = near_candidates(base, [], *rows([base] * (MAX_CANDIDATES + 5)))
    assert [c.row for c in many] == list(range(MAX_CANDIDATES))


def test_a_far_full_hash_is_a_candidate_through_a_close_crop_hash_either_way() -> None:
    base = 0x0123_4567_89AB_CDEF
    far = base ^ ((1 << 40) - 1)  # 40 bits by full hash: beyond any full-hash radius
    hashes, table = rows([far] * 3)
    table[0, 30] = base ^ ((1 << FAR_CROP_RADIUS) - 1)  # a crop of it: a candidate
    table[1, 30] = base ^ ((1 << (FAR_CROP_RADIUS + 2)) - 1)  # beyond the far crop radius
    found = near_candidates(base, [], hashes, table)
    assert [(c.row, c.full, c.crop) for c in found] == [(0, 40, FAR_CROP_RADIUS)]
    # the crop arrived first: one of the new image's crop hashes is close to its full hash
    own = [base] * len(CROP_REGIONS)
    own[-1] = far ^ 0b11
    found = near_candidates(base, own, *rows([far]))
    assert [(c.row, c.full, c.crop) for c in found] == [(0, 40, 2)]


def test_the_crop_scan_finds_rows_in_every_block_of_a_large_table() -> None:
    rng = np.random.default_rng(11)
    base = 0x0123_4567_89AB_CDEF
    stored = rng.integers(0, 2**63, 20_000, dtype=np.uint64)
    table = rng.integers(0, 2**63, (len(stored), len(CROP_REGIONS)), dtype=np.uint64)
    planted = [0, 8191, 8192, 16_385, 19_999]  # block edges of the scan, and its ends
    for k, row in enumerate(planted):
        table[row, k] = np.uint64(base ^ (1 << k))
    found = near_candidates(base, [], stored, table)
    assert sorted(c.row for c in found) == planted
    assert all(c.crop == 1 and c.full > VERIFY_RADIUS for c in found)


def test_a_twenty_percent_corner_crop_is_a_candidate_though_far_by_full_hash() -> None:
    height, width = ORIGINAL.shape
    original = findings_of(ORIGINAL)
    crop = findings_of(ORIGINAL[height // 5 :, width // 5 :])
    assert original.phash is not None and crop.phash is not None
    assert original.features is not None
    copy, first = DatasetHashes(), uuid.UUID(int=1)
    copy.extend(HashRows.one(1, first, original.phash, original.crops))
    (proposed,) = copy.candidates(crop.phash, crop.crops)
    assert proposed.hashes.full > VERIFY_RADIUS + 8  # beyond the old crop scan's 22 bits
    assert proposed.hashes.crop <= FAR_CROP_RADIUS
    known = {first: original.features}
    found = domain.near_duplicate(crop.phash, crop.crops, copy, PolicyRules(), crop.features, known)
    assert found is not None and found.of_asset == str(first)


def test_a_shortlist_completed_with_later_rows_equals_a_scan_of_every_row() -> None:
    rng = np.random.default_rng(5)
    base = 0x0123_4567_89AB_CDEF
    count = 3000
    stored = rng.integers(0, 2**63, count, dtype=np.uint64)
    table = rng.integers(0, 2**63, (count, len(CROP_REGIONS)), dtype=np.uint64)
    # more close rows than the bound, at several distances, before and after the split
    for row, bits in zip(
        rng.choice(count, 30, replace=False), rng.integers(0, 14, 30), strict=True
    ):
        flips = rng.choice(64, int(bits), replace=False)
        near = base ^ sum(1 << int(f) for f in flips)
        if row % 2:
            stored[row] = near
        else:
            table[row, int(rng.integers(len(CROP_REGIONS)))] = near
    ids = np.frombuffer(b"".join(uuid.UUID(int=i + 1).bytes for i in range(count)), np.uint8)

    def part(start: int, end: int) -> HashRows:
        arrivals = np.arange(start + 1, end + 1, dtype=np.int64)
        return HashRows(
            arrivals, ids.reshape(count, 16)[start:end], stored[start:end], table[start:end]
        )

    copy = DatasetHashes()
    copy.extend(part(0, 1700))
    early = copy.shortlist(base, [])
    copy.extend(part(1700, count))
    completed = copy.shortlist(base, [], early)
    assert completed == copy.shortlist(base, [])
    assert len(completed.proposed) == MAX_CANDIDATES and completed.scanned == count
    assert any(p.arrival > 1700 for p in completed.proposed)


def test_a_row_stored_with_the_older_crop_grid_is_padded_with_its_full_hash() -> None:
    row = HashRows.one(1, uuid.UUID(int=1), 7, [1] * OLD_CROP_REGIONS)
    assert row.crops.shape == (1, len(CROP_REGIONS))
    assert row.crops[0, :OLD_CROP_REGIONS].tolist() == [1] * OLD_CROP_REGIONS
    assert set(row.crops[0, OLD_CROP_REGIONS:].tolist()) == {7}
    with pytest.raises(ValueError, match="crop hashes"):
        HashRows.one(1, uuid.UUID(int=1), 7, [1] * (len(CROP_REGIONS) + 1))


def test_a_candidate_is_a_hash_match_under_the_rule_before_verification() -> None:
    assert Candidate(0, 10, 10).hash_match()
    assert Candidate(0, 20, 4).hash_match()  # a crop hash within 4, full within 22
    assert not Candidate(0, 24, 4).hash_match()
    assert not Candidate(0, 14, 6).hash_match()


# ---- the two-stage decision ------------------------------------------------------------------


def findings_of(gray: Gray) -> Findings:
    small = normalized(gray)
    packed = image_features(small).packed()
    return Findings([], dict(FINE), None, perceptual_hash(small), crop_hashes(small), packed)


def decided(new: Gray, old: Gray, *, old_features: bool = True) -> Duplicate | None:
    """``new`` judged against a dataset holding only ``old``; ``old`` with its stored
    features, or (``old_features`` False) stored before features were."""
    before, after = findings_of(old), findings_of(new)
    assert before.phash is not None and after.phash is not None
    assert before.features is not None
    copy, first = DatasetHashes(), uuid.UUID(int=1)
    copy.extend(HashRows.one(1, first, before.phash, before.crops))
    known = {first: before.features} if old_features else {}
    return domain.near_duplicate(
        after.phash, after.crops, copy, PolicyRules(), after.features, known
    )


def test_a_fifteen_percent_crop_beyond_the_hash_rule_is_found_by_verification() -> None:
    # full hashes 18 bits apart, crop distance 8: a candidate, but no hash match (crop limit 4)
    original, crop = findings_of(ORIGINAL), findings_of(ORIGINAL[36:444, 48:592])
    copy, first = DatasetHashes(), uuid.UUID(int=1)
    assert original.phash is not None and crop.phash is not None
    copy.extend(HashRows.one(1, first, original.phash, original.crops))
    assert original.features is not None
    known = {first: original.features}
    hashes_only = domain.near_duplicate(crop.phash, crop.crops, copy, PolicyRules())
    found = domain.near_duplicate(crop.phash, crop.crops, copy, PolicyRules(), crop.features, known)
    assert hashes_only is None
    assert found is not None and found.of_asset == str(first)
    assert found.distance <= PolicyRules().near_duplicate_radius


def test_a_close_hash_without_stored_features_is_decided_by_the_hashes() -> None:
    original = findings_of(ORIGINAL)
    assert original.phash is not None
    copy, first = DatasetHashes(), uuid.UUID(int=1)
    copy.extend(HashRows.one(1, first, original.phash, original.crops))
    again = findings_of(jpeg(ORIGINAL, 40))
    assert again.phash is not None
    found = domain.near_duplicate(again.phash, again.crops, copy, PolicyRules(), again.features)
    assert found is not None and found.of_asset == str(first) and found.via == "full"


def test_a_close_hash_whose_pictures_differ_is_not_a_near_duplicate() -> None:
    other = ORIGINAL.copy()
    other[120:360, 160:480] = scene(3, 320, 240)
    assert decided(other, ORIGINAL) is None


def test_a_policy_radius_below_the_default_tightens_the_verified_search_as_much() -> None:
    original, crop = findings_of(ORIGINAL), findings_of(ORIGINAL[36:444, 48:592])
    assert original.phash is not None and crop.phash is not None
    assert original.features is not None
    copy, first = DatasetHashes(), uuid.UUID(int=1)
    copy.extend(HashRows.one(1, first, original.phash, original.crops))
    known = {first: original.features}
    (proposed,) = copy.candidates(crop.phash, crop.crops)
    # the smallest radius that still verifies it
    reach = proposed.hashes.distance - (VERIFY_RADIUS - NEAR_DUPLICATE_RADIUS)
    for radius, found in ((reach, True), (reach - 1, False)):
        rules = PolicyRules(near_duplicate_radius=radius)
        match = domain.near_duplicate(crop.phash, crop.crops, copy, rules, crop.features, known)
        assert (match is not None) is found
        assert match is None or match.distance <= radius


# ---- pictures too small or too flat for keypoints: compared by the pictures alone -----------


def cells(seed: int, size: tuple[int, int] = (96, 72), grid: tuple[int, int] = (6, 8)) -> Gray:
    """A tiny picture of random colour cells with sensor-like noise (the dashboard test's
    pictures before they were enlarged), as the luma the service measures."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(50, 210, (*grid, 3)).astype(np.uint8)
    image = np.asarray(cv2.resize(colours, size, interpolation=cv2.INTER_NEAREST), np.float32)
    image += rng.normal(0, 10, image.shape).astype(np.float32)
    return luminance(np.clip(image, 0, 255).astype(np.uint8))


# Two of the first 3 000 seeds whose pictures are unrelated but 10 bits apart by full hash
UNRELATED_CELLS = (573, 1715)


def test_unrelated_tiny_pictures_within_the_hash_radius_are_not_near_duplicates() -> None:
    first, second = (cells(seed) for seed in UNRELATED_CELLS)
    assert hamming_distance(perceptual_hash(first), perceptual_hash(second)) <= 10
    assert not verifiable(features(first)) and not verifiable(features(second))
    assert decided(second, first) is None
    assert not compare_pictures(features(second), features(first), "full").same


@pytest.mark.parametrize(
    "copy",
    [
        lambda g: jpeg(g, 50),
        lambda g: np.asarray(cv2.resize(g, (72, 54), interpolation=AREA), np.uint8),
        lambda g: np.asarray(cv2.resize(g, (144, 108), interpolation=cv2.INTER_LINEAR), np.uint8),
        lambda g: jpeg(np.asarray(cv2.GaussianBlur(g, (0, 0), 0.6), np.uint8), 90),
    ],
    ids=["jpeg50", "resize75", "resize150", "blur"],
)
def test_a_reencoded_resized_or_blurred_tiny_picture_is_a_near_duplicate(
    copy: Callable[[Gray], Gray],
) -> None:
    original = cells(UNRELATED_CELLS[0])
    edited = copy(original)
    assert not verifiable(features(original))  # so the pair cannot be verified
    found = decided(edited, original)
    assert found is not None and found.of_asset == str(uuid.UUID(int=1))


def test_a_crop_of_a_tiny_picture_is_aligned_by_its_crop_hash_either_way() -> None:
    original = cells(UNRELATED_CELLS[1])
    crop = original[4:69, 5:91]  # 90 % of each side, off-centre
    assert not verifiable(features(original)) and not verifiable(features(crop))
    assert compare_pictures(features(crop), features(original), "crop").same
    assert compare_pictures(features(original), features(crop), "crop").same


@pytest.mark.parametrize(
    "corner",
    [(slice(None, 58), slice(None, 77)), (slice(14, None), slice(19, None))],
    ids=["top-left", "bottom-right"],
)
def test_an_80_percent_corner_crop_of_a_tiny_picture_is_a_near_duplicate_either_way(
    corner: tuple[slice, slice],
) -> None:
    original = cells(UNRELATED_CELLS[0])
    crop = original[corner]  # 80 % of each side, in a corner
    # beyond the hash rule: the full hashes are too far apart for a crop match
    assert hamming_distance(perceptual_hash(crop), perceptual_hash(original)) > 22
    assert not verifiable(features(crop)) and not verifiable(features(original))
    assert compare_pictures(features(crop), features(original), "crop").same
    for new, old in ((crop, original), (original, crop)):
        found = decided(new, old)
        assert found is not None and found.of_asset == str(uuid.UUID(int=1))


# Pairs of the first 1 500 seeds that stage 1 proposes but the hash rule does not match:
# full / closest crop distance 12 / 10, 14 / 10 and 28 / 10 bits
PROPOSED_CELLS = ((1020, 1409), (79, 620), (669, 1068))


@pytest.mark.parametrize("pair", PROPOSED_CELLS, ids=[f"{a}-{b}" for a, b in PROPOSED_CELLS])
def test_unrelated_tiny_pictures_proposed_beyond_the_hash_rule_are_not_near_duplicates(
    pair: tuple[int, int],
) -> None:
    first, second = (cells(seed) for seed in pair)
    hashes = [(perceptual_hash(g), crop_hashes(g)) for g in (normalized(first), normalized(second))]
    proposed = near_candidates(
        hashes[1][0],
        hashes[1][1],
        np.array([hashes[0][0]], np.uint64),
        np.array([hashes[0][1]], np.uint64),
    )
    assert proposed and not proposed[0].hash_match()  # compared on their pictures alone
    assert decided(second, first) is None
    assert decided(first, second) is None


def test_a_flat_graphic_is_placed_only_within_the_hash_rule() -> None:
    # a plain ground and a soft disc fits inside another such graphic at some shift and scale
    assert not structured(features(blob(150, 90)))
    assert structured(features(cells(UNRELATED_CELLS[0])))


def blob(background: float, shade: float) -> Gray:
    """A flat graphic: a plain background and one soft disc in a corner."""
    image = np.full((72, 96), background, np.float32)
    cv2.circle(image, (76, 56), 22, shade, -1, cv2.LINE_AA)
    return np.clip(cv2.GaussianBlur(image, (0, 0), 1.0), 0, 255).astype(np.uint8)


def test_flat_graphics_that_differ_only_in_their_tones_are_not_near_duplicates() -> None:
    # the same layout in other colours: the brightness fit alone would make them one picture
    first, second = blob(150, 90), blob(110, 80)
    assert not compare_pictures(features(second), features(first), "full").same
    assert compare_pictures(features(jpeg(first, 60)), features(first), "full").same


def test_a_tiny_picture_against_a_stored_one_without_features_is_decided_by_the_hashes() -> None:
    first, second = (cells(seed) for seed in UNRELATED_CELLS)
    found = decided(second, first, old_features=False)  # first stored before features were
    assert found is not None and found.of_asset == str(uuid.UUID(int=1))


def flat_graphic(seed: int, size: tuple[int, int] = (96, 72)) -> Gray:
    """A flat graphic drawn as the benchmark's (a graded ground, 1-3 soft ellipses, light
    noise), in gray: the luma of such pictures."""
    rng = np.random.default_rng(seed)
    width, height = size
    rows = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    ground = rng.uniform(60, 220) * (1 - rows * rng.uniform(0, 0.4))
    image = np.ascontiguousarray(np.broadcast_to(ground, (height, width)), np.float32)
    for _ in range(int(rng.integers(1, 4))):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(width * rng.uniform(0.1, 0.4)), int(height * rng.uniform(0.1, 0.4)))
        angle, shade = float(rng.uniform(0, 180)), float(rng.uniform(0, 255))
        cv2.ellipse(image, centre, axes, angle, 0, 360, shade, -1, cv2.LINE_AA)
    soft = np.asarray(cv2.GaussianBlur(image, (0, 0), max(width, height) / 150), np.float32)
    soft += rng.normal(0, 2, soft.shape).astype(np.float32)
    return np.clip(soft, 0, 255).astype(np.uint8)


# Two pairs of the first 1 500 seeds: unrelated flat graphics the hash rule matches by a crop
# hash (full / crop distance 16 / 2 and 12 / 2), where a placement of one disc on another
# passed every other check (it correlates at 0.984 and 0.983 there)
UNRELATED_FLAT = ((1113, 1136), (932, 1244))


@pytest.mark.parametrize("pair", UNRELATED_FLAT, ids=[f"{a}-{b}" for a, b in UNRELATED_FLAT])
def test_unrelated_flat_graphics_are_not_placed_one_inside_the_other(
    pair: tuple[int, int],
) -> None:
    first, second = (flat_graphic(seed) for seed in pair)
    assert not structured(features(first)) and not structured(features(second))
    assert decided(second, first) is None
    assert decided(first, second) is None


def test_a_crop_of_a_flat_graphic_is_still_placed_either_way() -> None:
    original = flat_graphic(UNRELATED_FLAT[0][0])
    crop = original[5:70, 8:94]  # 90 % of each side, off-centre
    assert not verifiable(features(crop)) and not structured(features(crop))
    for new, old in ((crop, original), (original, crop)):
        found = decided(new, old)
        assert found is not None and found.of_asset == str(uuid.UUID(int=1))
