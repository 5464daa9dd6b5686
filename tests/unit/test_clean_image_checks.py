"""Image checks of the clean service, on images generated here with known defects.

Every image is drawn with NumPy/OpenCV and encoded on the spot; defective files (truncated,
bad checksums, bombs) are made by editing real encoded bytes.
"""

from __future__ import annotations

import itertools
import random
import struct
import zlib
from functools import cache
from typing import Any

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from services.clean.checks import (
    DEFAULT_THRESHOLDS,
    NEAR_DUPLICATE_RADIUS,
    ImageReport,
    Threshold,
    analyze_image,
    band_keys,
    hamming_distance,
    judge_metrics,
    nearest_within,
    pixel_digest,
    probe_keys,
    read_header,
)
from services.clean.checks.container import dimension_mismatch
from services.clean.checks.fingerprint import BAND_BITS, BAND_COUNT, HASH_BITS

Pixels = NDArray[np.uint8]

# ---- generated images -------------------------------------------------------------------------


@cache
def scene(seed: int, width: int = 640, height: int = 480) -> Pixels:
    """A busy colour picture: a tilted gradient, 40 random shapes and a little sensor noise."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    tilt_x, tilt_y = rng.uniform(-0.2, 0.2, 2)
    base = rng.uniform(60, 190, 3)
    gradient = base[None, None, :] + (tilt_x * cols + tilt_y * rows)[:, :, None]
    image = np.ascontiguousarray(np.clip(gradient, 0, 255).astype(np.uint8))
    for _ in range(40):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        shape = rng.integers(0, 3)
        if shape == 0:
            radius = int(rng.integers(5, max(6, height // 4)))
            cv2.circle(image, (x, y), radius, colour, -1, cv2.LINE_AA)
        elif shape == 1:
            size = rng.integers(10, [max(11, width // 3), max(11, height // 3)])
            corner = (x + int(size[0]), y + int(size[1]))
            cv2.rectangle(image, (x, y), corner, colour, -1)
        else:
            end = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            cv2.line(image, (x, y), end, colour, int(rng.integers(1, 6)), cv2.LINE_AA)
    picture = noisy(image, 3.0, seed)
    picture.flags.writeable = False  # shared by the cache: a test must copy before editing
    return picture


def noisy(image: NDArray[Any], sigma: float, seed: int = 0) -> Pixels:
    """``image`` with Gaussian sensor noise."""
    noise = np.random.default_rng(seed).normal(0.0, sigma, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def blurred(image: Pixels, sigma: float) -> Pixels:
    return np.asarray(cv2.GaussianBlur(image, (0, 0), sigma), dtype=np.uint8)


def encode(image: NDArray[Any], ext: str = ".png", *params: int) -> bytes:
    ok, encoded = cv2.imencode(ext, image, list(params))
    assert ok
    return bytes(encoded.tobytes())


def jpeg(image: NDArray[Any], quality: int = 90) -> bytes:
    return encode(image, ".jpg", cv2.IMWRITE_JPEG_QUALITY, quality)


def decode(data: bytes) -> NDArray[Any]:
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert pixels is not None
    return np.asarray(pixels)


def object_on_backdrop() -> Pixels:
    """A sharp subject filling about 5 % of the frame on a plain, slightly noisy backdrop."""
    image = noisy(np.full((480, 640, 3), (200.0, 190.0, 170.0)), 2.0)
    image[180:300, 260:380] = scene(7)[180:300, 260:380]
    return image


def failed(report: ImageReport) -> set[str]:
    return set(report.failed_codes)


# ---- edits of encoded files -------------------------------------------------------------------


def png_chunk_offset(data: bytes, kind: bytes) -> int:
    """Where the length field of the first ``kind`` chunk of a PNG starts."""
    pos = 8
    while True:
        length, found = struct.unpack_from(">I4s", data, pos)
        if found == kind:
            return pos
        pos += 12 + length


def png_with_size(data: bytes, width: int, height: int) -> bytes:
    """``data`` with its IHDR declaring ``width`` x ``height``, with a valid CRC."""
    pos = png_chunk_offset(data, b"IHDR")
    ihdr = struct.pack(">II", width, height) + data[pos + 16 : pos + 21]
    chunk = b"IHDR" + ihdr
    return (
        data[:pos]
        + struct.pack(">I", 13)
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + data[pos + 25 :]
    )


def jpeg_with_size(data: bytes, width: int, height: int) -> bytes:
    """``data`` with its baseline frame header (SOF0) declaring ``width`` x ``height``."""
    pos = data.index(b"\xff\xc0")
    return data[: pos + 5] + struct.pack(">HH", height, width) + data[pos + 9 :]


def jpeg_with_orientation(data: bytes, orientation: int) -> bytes:
    """``data`` with an EXIF block (APP1) declaring ``orientation``."""
    entry = struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff = b"II*\x00" + struct.pack("<IH", 8, 1) + entry + struct.pack("<I", 0)
    app1 = b"Exif\x00\x00" + tiff
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]


# ---- corrupt and unreadable files --------------------------------------------------------------


def test_zero_byte_file_is_reported_empty() -> None:
    report = analyze_image(b"")
    assert failed(report) == {"empty"}
    assert report.corrupt and not report.decoded


def test_random_bytes_are_an_unrecognized_format() -> None:
    report = analyze_image(random.Random(3).randbytes(5000))
    assert failed(report) == {"unrecognized_format"}
    assert report.corrupt and report.format is None


def test_random_bytes_behind_a_jpeg_signature_are_corrupt_and_never_decoded() -> None:
    data = b"\xff\xd8\xff\xe0" + random.Random(4).randbytes(5000)
    report = analyze_image(data)
    assert failed(report) & {"header_unreadable", "truncated"}
    assert report.corrupt and not report.decoded


def test_truncated_jpeg_is_reported_truncated() -> None:
    data = jpeg(scene(1))
    report = analyze_image(data[: len(data) * 6 // 10])
    assert "truncated" in failed(report)
    assert report.corrupt


def test_jpeg_missing_only_its_end_marker_is_truncated() -> None:
    data = jpeg(scene(1))
    assert data.endswith(b"\xff\xd9")
    assert "truncated" in failed(analyze_image(data[:-2]))


@pytest.mark.parametrize(
    "params",
    [
        (),
        (cv2.IMWRITE_JPEG_PROGRESSIVE, 1),  # several scans with tables between them
        (cv2.IMWRITE_JPEG_RST_INTERVAL, 4),  # restart markers inside the compressed data
    ],
    ids=["baseline", "progressive", "restart-markers"],
)
def test_jpeg_structure_walk_finds_the_end_of_every_jpeg_flavour(params: tuple[int, ...]) -> None:
    data = encode(scene(1), ".jpg", *params)
    assert "truncated" not in failed(analyze_image(data))
    assert "truncated" in failed(analyze_image(data[: len(data) - 300]))


def test_bytes_after_the_jpeg_end_marker_are_not_a_defect() -> None:
    # motion photos and some cameras append data after the end-of-image marker
    report = analyze_image(jpeg(scene(1)) + b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    assert not report.corrupt
    assert report.decoded


def test_png_with_a_flipped_idat_byte_fails_its_checksum() -> None:
    data = bytearray(encode(scene(2)))
    data[png_chunk_offset(bytes(data), b"IDAT") + 100] ^= 0xFF
    report = analyze_image(bytes(data))
    check = next(c for c in report.failures if c.code == "checksum_mismatch")
    assert "IDAT" in check.message
    assert check.value == 1 and check.threshold == 0
    assert report.corrupt


def test_png_cut_before_its_iend_chunk_is_truncated() -> None:
    data = encode(scene(2))
    assert "truncated" in failed(analyze_image(data[: png_chunk_offset(data, b"IEND")]))


def test_webp_shorter_than_its_riff_size_is_truncated() -> None:
    data = encode(scene(2), ".webp", cv2.IMWRITE_WEBP_QUALITY, 80)
    assert "truncated" in failed(analyze_image(data[: len(data) // 2]))


def test_png_declaring_100000_squared_pixels_is_refused_without_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def never(*_: object) -> None:
        raise AssertionError("a decompression bomb was handed to the decoder")

    monkeypatch.setattr(cv2, "imdecode", never)
    bomb = png_with_size(encode(scene(2, 64, 48)), 100_000, 100_000)
    report = analyze_image(bomb)
    refusal = next(c for c in report.failures if c.code == "decompression_bomb")
    assert refusal.value == 1e10
    assert refusal.threshold == DEFAULT_THRESHOLDS["decompression_bomb"].limit
    assert "checksum_mismatch" not in failed(report)  # the bomb is a well-formed PNG
    assert not report.decoded


def test_jpeg_declaring_a_huge_frame_is_refused_without_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def never(*_: object) -> None:
        raise AssertionError("a decompression bomb was handed to the decoder")

    monkeypatch.setattr(cv2, "imdecode", never)
    report = analyze_image(jpeg_with_size(jpeg(scene(2, 64, 48)), 65_000, 65_000))
    assert "decompression_bomb" in failed(report)


def test_the_pixel_limit_is_a_threshold_setting() -> None:
    limits = {"decompression_bomb": Threshold("declared_pixels", 100_000, "above", "too big")}
    assert failed(analyze_image(jpeg(scene(2)), limits)) == {"decompression_bomb"}


@pytest.mark.parametrize(
    ("ext", "params", "fmt"),
    [
        (".jpg", (), "jpeg"),
        (".png", (), "png"),
        (".webp", (cv2.IMWRITE_WEBP_QUALITY, 80), "webp"),  # lossy: VP8
        (".webp", (cv2.IMWRITE_WEBP_QUALITY, 101), "webp"),  # lossless: VP8L
        (".bmp", (), "bmp"),
        (".tiff", (), "tiff"),
    ],
)
def test_header_size_is_read_without_decoding(ext: str, params: tuple[int, ...], fmt: str) -> None:
    header = read_header(encode(scene(5, 123, 45), ext, *params))
    assert (header.format, header.width, header.height) == (fmt, 123, 45)


def test_webp_with_alpha_declares_its_canvas_size() -> None:
    rgba = np.dstack([scene(5, 123, 45), np.full((45, 123), 128, np.uint8)])
    header = read_header(encode(rgba, ".webp", cv2.IMWRITE_WEBP_QUALITY, 80))
    assert (header.width, header.height) == (123, 45)


def test_every_format_decodes_to_the_size_its_header_declares() -> None:
    for ext in (".jpg", ".png", ".webp", ".bmp", ".tiff"):
        report = analyze_image(encode(scene(5, 123, 45), ext))
        assert not report.corrupt, ext
        assert (report.width, report.height) == (123, 45)


def test_decoded_size_differing_from_the_header_is_a_dimension_mismatch() -> None:
    header = read_header(encode(scene(5, 123, 45)))
    assert dimension_mismatch(header, 123, 45) is None
    mismatch = dimension_mismatch(header, 120, 45)
    assert mismatch is not None and not mismatch.passed
    assert mismatch.code == "dimension_mismatch"
    assert "123x45" in mismatch.message and "120x45" in mismatch.message


def test_a_good_photo_passes_every_check_and_reports_every_metric() -> None:
    report = analyze_image(jpeg(scene(0)))
    assert report.failures == ()
    assert not report.corrupt and report.decoded
    assert {t.metric for t in DEFAULT_THRESHOLDS.values()} <= set(report.metrics)
    assert {c.code for c in report.checks} == set(DEFAULT_THRESHOLDS)
    assert all(c.value is not None and c.threshold is not None for c in report.checks)


# ---- exact and near duplicates ----------------------------------------------------------------


def test_jpeg_resaved_losslessly_as_png_has_the_same_pixel_digest() -> None:
    original = jpeg(scene(3))
    resaved = encode(decode(original))
    first, second = analyze_image(original), analyze_image(resaved)
    assert original != resaved
    assert first.pixel_sha256 == second.pixel_sha256
    assert first.phash == second.phash


def test_one_changed_pixel_changes_the_pixel_digest() -> None:
    image = scene(3).copy()
    before = pixel_digest(image)
    image[10, 10, 0] ^= 1
    assert pixel_digest(image) != before


def test_gray_pixels_stored_with_one_or_three_channels_share_a_digest() -> None:
    gray = cv2.cvtColor(scene(3), cv2.COLOR_BGR2GRAY)
    as_colour = encode(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    assert analyze_image(encode(gray)).pixel_sha256 == analyze_image(as_colour).pixel_sha256


def test_opaque_alpha_does_not_change_the_pixel_digest() -> None:
    image = scene(3)
    opaque = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
    assert analyze_image(encode(opaque)).pixel_sha256 == analyze_image(encode(image)).pixel_sha256


def test_transparency_is_part_of_the_pixel_digest() -> None:
    image = scene(3)
    see_through = np.dstack([image, np.full(image.shape[:2], 100, np.uint8)])
    assert (
        analyze_image(encode(see_through)).pixel_sha256 != analyze_image(encode(image)).pixel_sha256
    )


def test_sixteen_bit_png_is_measured_like_its_eight_bit_original() -> None:
    image = scene(3)
    deep = analyze_image(encode(image.astype(np.uint16) * 257))
    shallow = analyze_image(encode(image))
    assert deep.decoded and deep.failures == ()
    assert deep.metrics["blur_score"] == pytest.approx(shallow.metrics["blur_score"])
    assert deep.phash == shallow.phash
    assert deep.pixel_sha256 != shallow.pixel_sha256  # 16-bit samples are other pixels


def test_exif_orientation_is_applied_before_sizing_and_fingerprinting() -> None:
    stored = jpeg(scene(3, 320, 240))
    upright = encode(cv2.rotate(decode(stored), cv2.ROTATE_90_CLOCKWISE))
    rotated = analyze_image(jpeg_with_orientation(stored, 6))
    assert (rotated.width, rotated.height) == (240, 320)
    assert not rotated.corrupt  # header 320x240 matches the stored raster
    assert rotated.pixel_sha256 == analyze_image(upright).pixel_sha256


def near_copies(image: Pixels) -> dict[str, bytes]:
    """The edits near-duplicate detection must see through."""
    height, width = image.shape[:2]
    cut_y, cut_x = round(height * 0.025), round(width * 0.025)
    return {
        "resize 50 %": encode(cv2.resize(image, (width // 2, height // 2))),
        "JPEG quality 40": jpeg(image, 40),
        "brightness +20 %": encode(np.clip(image * 1.2, 0, 255).astype(np.uint8)),
        "brightness -20 %": encode((image * 0.8).astype(np.uint8)),
        "crop 5 %": encode(image[cut_y : height - cut_y, cut_x : width - cut_x]),
    }


@pytest.mark.parametrize("seed", range(5))
def test_resized_recompressed_rebrightened_and_cropped_copies_stay_within_the_radius(
    seed: int,
) -> None:
    original = analyze_image(encode(scene(100 + seed, 320, 240))).phash
    assert original is not None
    for edit, data in near_copies(scene(100 + seed, 320, 240)).items():
        copy = analyze_image(data).phash
        assert copy is not None
        assert hamming_distance(original, copy) <= NEAR_DUPLICATE_RADIUS, edit


def test_twenty_unrelated_images_are_all_farther_apart_than_the_radius() -> None:
    hashes = [analyze_image(encode(scene(200 + i, 320, 240))).phash for i in range(20)]
    distances = [hamming_distance(a, b) for a, b in itertools.combinations(hashes, 2) if a and b]
    assert len(distances) == 190
    assert min(distances) > NEAR_DUPLICATE_RADIUS


def test_hashes_within_three_bits_always_share_a_band() -> None:
    # Whether two hashes share a band depends only on the bits where they differ, so trying
    # every difference pattern of up to 3 bits proves it for every pair of hashes.
    base = random.Random(5).getrandbits(HASH_BITS)
    stored = set(band_keys(base))
    for weight in range(4):
        for positions in itertools.combinations(range(HASH_BITS), weight):
            other = base ^ sum(1 << p for p in positions)
            assert stored & set(band_keys(other)), positions


def test_four_differing_bits_can_miss_every_band() -> None:
    # the pigeonhole bound is tight: one differing bit per band shares nothing
    base = random.Random(6).getrandbits(HASH_BITS)
    other = base ^ sum(1 << (band * BAND_BITS) for band in range(BAND_COUNT))
    assert hamming_distance(base, other) == 4
    assert not set(band_keys(base)) & set(band_keys(other))


@pytest.mark.parametrize("radius", [3, 7, NEAR_DUPLICATE_RADIUS, 11])
def test_probe_keys_reach_every_hash_within_the_radius(radius: int) -> None:
    # The probes of a band enumerate every value within radius // BAND_COUNT bits, so only the
    # number of differing bits per band matters: trying every split of up to ``radius`` bits
    # over the bands (each placed at the low end of its band) covers every case.
    base = random.Random(radius).getrandbits(HASH_BITS)
    probes = set(probe_keys(base, radius))
    splits = itertools.product(range(radius + 1), repeat=BAND_COUNT)
    for split in (s for s in splits if sum(s) <= radius):
        difference = sum(((1 << bits) - 1) << (band * BAND_BITS) for band, bits in enumerate(split))
        assert probes & set(band_keys(base ^ difference)), split


def test_probe_count_grows_with_the_radius_as_documented() -> None:
    assert [len(probe_keys(0, r)) for r in (3, 7, 11, 15)] == [4, 68, 548, 2788]


def test_nearest_match_is_the_closest_then_the_first_arrived() -> None:
    query = 0
    candidates = [("far", (1 << 12) - 1), ("near", 0b1111), ("first", 0b11), ("second", 0b1100)]
    assert nearest_within(query, candidates, radius=10) == ("first", 2)
    assert nearest_within(query, candidates[:1], radius=10) is None


# ---- sharpness --------------------------------------------------------------------------------


def blur_of(data: bytes) -> float:
    return analyze_image(data).metrics["blur_score"]


def test_sharp_image_passes_and_its_gaussian_blurred_copy_is_blurry() -> None:
    sharp = analyze_image(encode(scene(0)))
    soft = analyze_image(encode(blurred(scene(0), 3.0)))
    assert "blurry" not in failed(sharp)
    assert "blurry" in failed(soft)
    assert sharp.metrics["blur_score"] > 10 * soft.metrics["blur_score"]


def test_sharp_object_on_a_flat_background_is_not_blurry() -> None:
    report = analyze_image(jpeg(object_on_backdrop()))
    assert "blurry" not in failed(report)
    assert "blurry" in failed(analyze_image(jpeg(blurred(object_on_backdrop(), 3.0))))


@pytest.mark.parametrize("quality", [5, 10, 20])
def test_heavy_jpeg_compression_does_not_make_a_blurred_image_look_sharp(quality: int) -> None:
    assert "blurry" in failed(analyze_image(jpeg(blurred(scene(1), 3.0), quality)))


def test_blur_score_is_the_same_after_a_2x_upscale() -> None:
    image = scene(2)
    upscaled = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    original, larger = blur_of(encode(image)), blur_of(encode(upscaled))
    # bicubic upscaling itself sharpens a little: 7-14 % on these scenes
    assert larger == pytest.approx(original, rel=0.2)


# ---- exposure, information, colour, geometry --------------------------------------------------


def test_dark_image_is_dark() -> None:
    report = analyze_image(jpeg((scene(0) * 0.15).astype(np.uint8)))
    assert "dark" in failed(report)
    assert "dark" not in failed(analyze_image(jpeg(scene(0))))


def test_blown_out_image_is_overexposed() -> None:
    blown = np.clip(scene(1).astype(np.int16) + 140, 0, 255).astype(np.uint8)
    report = analyze_image(jpeg(blown))
    assert "overexposed" in failed(report)
    assert report.metrics["clipped_highlights"] > 0.25  # measured too, for policies that prefer it
    brighter = np.clip(scene(1) * 1.2, 0, 255).astype(np.uint8)
    assert "overexposed" not in failed(analyze_image(jpeg(brighter)))


def test_flat_noisy_frame_has_low_information() -> None:
    blank = noisy(np.full((480, 640, 3), (90.0, 100.0, 110.0)), 4.0)
    assert "low_information" in failed(analyze_image(jpeg(blank)))
    assert "low_information" not in failed(analyze_image(jpeg(scene(0))))


def test_grayscale_saved_as_colour_is_flagged_but_true_grayscale_and_colour_are_not() -> None:
    gray = cv2.cvtColor(scene(4), cv2.COLOR_BGR2GRAY)
    assert "grayscale_as_colour" in failed(analyze_image(jpeg(cv2.merge([gray, gray, gray]))))
    assert "grayscale_as_colour" in failed(analyze_image(encode(cv2.merge([gray, gray, gray]))))
    stored_gray = analyze_image(jpeg(gray))
    assert "grayscale_as_colour" not in {c.code for c in stored_gray.checks}
    assert "grayscale_as_colour" not in failed(analyze_image(jpeg(scene(4))))


def test_tiny_image_is_too_small() -> None:
    report = analyze_image(encode(scene(6, 40, 30)))
    assert "too_small" in failed(report)
    assert report.metrics["shortest_side"] == 30


def test_long_strip_has_an_odd_aspect_ratio() -> None:
    report = analyze_image(encode(scene(6, 1000, 200)))
    assert "odd_aspect_ratio" in failed(report)
    assert report.metrics["aspect_ratio"] == 5.0
    assert "odd_aspect_ratio" not in failed(analyze_image(encode(scene(6, 640, 480))))


def test_image_above_the_megapixel_limit_is_too_large() -> None:
    limits = {"too_large": Threshold("megapixels", 0.25, "above", "image is too large")}
    report = analyze_image(jpeg(scene(0)), limits)
    assert failed(report) == {"too_large"}
    assert report.metrics["megapixels"] == pytest.approx(0.3072)


# ---- judging stored metrics -------------------------------------------------------------------


def test_stored_metrics_can_be_rejudged_against_new_thresholds_without_the_image() -> None:
    metrics = dict(analyze_image(jpeg(scene(0))).metrics)
    assert all(result.passed for result in judge_metrics(metrics))
    stricter = dict(DEFAULT_THRESHOLDS)
    stricter["blurry"] = Threshold("blur_score", metrics["blur_score"] + 1, "below", "soft")
    rejudged = {result.code: result for result in judge_metrics(metrics, stricter)}
    assert not rejudged["blurry"].passed
    assert rejudged["blurry"].threshold == metrics["blur_score"] + 1
    assert "blur_score" in rejudged["blurry"].message


def test_each_failure_carries_its_value_threshold_and_a_message() -> None:
    report = analyze_image(encode(blurred(scene(0), 3.0)))
    blurry = next(c for c in report.failures if c.code == "blurry")
    assert blurry.value == report.metrics["blur_score"]
    assert blurry.threshold == DEFAULT_THRESHOLDS["blurry"].limit
    assert blurry.message.startswith("image is blurry: blur_score")
