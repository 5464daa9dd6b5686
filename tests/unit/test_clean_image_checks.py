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
    CROP_CANDIDATE_RADIUS,
    CROP_MATCH_RADIUS,
    CROP_REGIONS,
    DEFAULT_THRESHOLDS,
    NEAR_DUPLICATE_RADIUS,
    ImageReport,
    Threshold,
    analyze_image,
    crop_distance,
    crop_hashes,
    hamming_distance,
    judge_metrics,
    near_match,
    perceptual_hash,
    pixel_digest,
    read_header,
)
from services.clean.checks.container import dimension_mismatch
from services.clean.checks.fingerprint import HASH_BITS
from services.clean.checks.quality import luminance, normalized

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
    assert deep.metrics["edge_sharpness"] == pytest.approx(shallow.metrics["edge_sharpness"])
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


def test_near_match_takes_the_closest_full_hash_then_the_first_arrived() -> None:
    candidates = [
        ("far", bits(12), None),
        ("near", bits(4), None),
        ("first", bits(2), None),
        ("second", 0b1100, None),
    ]
    assert match(0, (), candidates) == ("first", 2, "full")
    assert match(0, (), candidates[:1]) is None


# ---- sharpness --------------------------------------------------------------------------------


def sharpness_of(data: bytes) -> float:
    return analyze_image(data).metrics["edge_sharpness"]


@pytest.mark.parametrize("size", [(320, 240), (640, 480), (1600, 1200)])
def test_sharp_image_passes_and_its_gaussian_blurred_copy_is_blurry(size: tuple[int, int]) -> None:
    sharp = analyze_image(jpeg(scene(0, *size)))
    soft = analyze_image(jpeg(blurred(scene(0, *size), 3.0 * size[0] / 640)))
    assert "blurry" not in failed(sharp)
    assert "blurry" in failed(soft)
    assert sharp.metrics["edge_sharpness"] > 2 * soft.metrics["edge_sharpness"]


def test_sharp_object_on_a_flat_background_is_not_blurry() -> None:
    report = analyze_image(jpeg(object_on_backdrop()))
    assert "blurry" not in failed(report)
    assert "blurry" in failed(analyze_image(jpeg(blurred(object_on_backdrop(), 3.0))))


@pytest.mark.parametrize(("sigma", "quality"), [(3.0, 5), (3.0, 10), (3.0, 20), (2.0, 10)])
def test_heavy_jpeg_compression_does_not_make_a_blurred_image_look_sharp(
    sigma: float, quality: int
) -> None:
    # at quality 5 the 8x8 blocks are flat and their borders are steps as steep as any edge
    assert "blurry" in failed(analyze_image(jpeg(blurred(scene(1), sigma), quality)))


def test_sensor_noise_added_after_the_blur_does_not_make_it_look_sharp() -> None:
    assert "blurry" in failed(analyze_image(encode(noisy(blurred(scene(1), 6.0), 4.0))))


@pytest.mark.parametrize("exposure", [0.15, 0.05])
def test_dark_sharp_image_is_dark_but_not_blurry(exposure: float) -> None:
    report = analyze_image(jpeg((scene(0) * exposure).astype(np.uint8)))
    assert "dark" in failed(report)
    assert "blurry" not in failed(report)


def test_sharpness_does_not_depend_on_contrast() -> None:
    image = scene(0).astype(np.float32)
    faint = np.clip(128 + (image - 128) * 0.3, 0, 255).astype(np.uint8)
    assert sharpness_of(encode(faint)) == pytest.approx(sharpness_of(encode(scene(0))), rel=0.15)


def test_edge_sharpness_is_about_the_same_after_a_2x_upscale() -> None:
    image = scene(2)
    upscaled = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    original, larger = sharpness_of(encode(image)), sharpness_of(encode(upscaled))
    assert larger == pytest.approx(original, rel=0.15)


def test_flat_frame_has_no_edge_to_judge_and_is_not_called_blurry() -> None:
    report = analyze_image(jpeg(noisy(np.full((480, 640, 3), 120.0), 3.0)))
    assert "edge_sharpness" not in report.metrics
    assert "blurry" not in {check.code for check in report.checks}
    assert "low_information" in failed(report)


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


@pytest.mark.parametrize("noise", [1.0, 4.0, 8.0])
def test_flat_noisy_frame_has_low_information(noise: float) -> None:
    blank = noisy(np.full((480, 640, 3), (90.0, 100.0, 110.0)), noise)
    assert "low_information" in failed(analyze_image(jpeg(blank)))
    assert "low_information" in failed(analyze_image(encode(blank)))
    assert "low_information" not in failed(analyze_image(jpeg(scene(0))))


def test_flat_field_with_a_faint_gradient_has_low_information() -> None:
    ramp = np.linspace(0.0, 8.0, 640)[None, :, None]
    field = noisy(np.full((480, 640, 3), 60.0) + ramp, 2.0)
    report = analyze_image(jpeg(field))
    assert "low_information" in failed(report)
    assert report.metrics["structure_fraction"] == 0.0


def test_small_sharp_subject_on_a_plain_backdrop_is_not_low_information() -> None:
    report = analyze_image(jpeg(object_on_backdrop()))  # the subject covers about 5 %
    assert "low_information" not in failed(report)
    assert report.metrics["structure_fraction"] < 0.2


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
    limit = metrics["edge_sharpness"] + 0.01
    stricter["blurry"] = Threshold("edge_sharpness", limit, "below", "soft")
    rejudged = {result.code: result for result in judge_metrics(metrics, stricter)}
    assert not rejudged["blurry"].passed
    assert rejudged["blurry"].threshold == limit
    assert "edge_sharpness" in rejudged["blurry"].message


def test_each_failure_carries_its_value_threshold_and_a_message() -> None:
    report = analyze_image(encode(blurred(scene(0), 3.0)))
    blurry = next(c for c in report.failures if c.code == "blurry")
    assert blurry.value == report.metrics[DEFAULT_THRESHOLDS["blurry"].metric]
    assert blurry.threshold == DEFAULT_THRESHOLDS["blurry"].limit
    assert blurry.message.startswith("image is blurry: axis_sharpness")


# ---- near duplicates under crops --------------------------------------------------------------


def cropped(image: Pixels, keep: float, left: float, top: float) -> Pixels:
    """The part of ``image`` keeping ``keep`` of each side, from (left, top) as side fractions."""
    height, width = image.shape[:2]
    x, y = round(left * width), round(top * height)
    return image[y : round((top + keep) * height), x : round((left + keep) * width)]


CORNERS_AND_CENTRE = [(0.0, 0.0), (0.1, 0.0), (0.0, 0.1), (0.1, 0.1), (0.05, 0.05)]
EVERY_CANDIDATE = HASH_BITS  # a candidate radius that leaves no stored image out


def match(
    phash: int,
    crops: tuple[int, ...],
    candidates: list[tuple[Any, int, tuple[int, ...] | None]],
    **limits: int,
) -> tuple[Any, int, str] | None:
    """:func:`near_match` over ``(key, full hash, crop hashes or None)`` in arrival order."""
    hashes = np.array([full for _, full, _ in candidates], np.uint64)
    # a short or missing crop set is padded with the full hash, which can never match
    table = np.array(
        [[*(c or ()), *[full] * (len(CROP_REGIONS) - len(c or ()))] for _, full, c in candidates],
        np.uint64,
    ).reshape(len(candidates), len(CROP_REGIONS))
    found = near_match(phash, crops, hashes, table, **limits)
    return None if found is None else (candidates[found.row][0], found.distance, found.via)


def match_among(
    report: ImageReport, stored: list[tuple[Any, ImageReport]]
) -> tuple[Any, int, str] | None:
    """:func:`near_match` of a new image against stored ones, every one of them a candidate."""
    assert report.phash is not None
    candidates = [(key, other.phash or 0, other.crop_hashes) for key, other in stored]
    return match(report.phash, report.crop_hashes, candidates, candidate_radius=EVERY_CANDIDATE)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("left", "top"), CORNERS_AND_CENTRE)
def test_a_ten_percent_crop_is_within_the_crop_radius_of_its_original(
    seed: int, left: float, top: float
) -> None:
    original = analyze_image(jpeg(scene(300 + seed)))
    copy = analyze_image(jpeg(cropped(scene(300 + seed), 0.9, left, top)))
    assert original.phash is not None and copy.phash is not None
    distance = crop_distance(original.phash, original.crop_hashes, copy.phash, copy.crop_hashes)
    assert distance is not None and distance <= CROP_MATCH_RADIUS


@pytest.mark.parametrize(("left", "top"), CORNERS_AND_CENTRE)
def test_a_cropped_copy_matches_whether_it_arrives_before_or_after_its_original(
    left: float, top: float
) -> None:
    original = analyze_image(jpeg(scene(310)))
    copy = analyze_image(jpeg(cropped(scene(310), 0.9, left, top)))
    assert original.phash is not None and copy.phash is not None
    after = match_among(copy, [("original", original)])
    before = match_among(original, [("copy", copy)])
    assert after is not None and after[0] == "original"
    assert before is not None and before[0] == "copy"
    assert after[1] == before[1] <= CROP_MATCH_RADIUS


def test_twenty_unrelated_images_never_match_even_through_their_crop_hashes() -> None:
    reports = [analyze_image(jpeg(scene(200 + i, 320, 240))) for i in range(20)]
    for index, report in enumerate(reports):
        assert match_among(report, list(enumerate(reports[:index]))) is None


def test_every_decoded_image_gets_one_unsigned_hash_per_crop_region() -> None:
    report = analyze_image(jpeg(scene(0)))
    assert len(report.crop_hashes) == len(CROP_REGIONS) == 43
    assert all(0 <= crop < 1 << HASH_BITS for crop in report.crop_hashes)
    assert analyze_image(b"not an image").crop_hashes == ()


def test_crop_hashes_are_the_perceptual_hashes_of_their_regions() -> None:
    # block edges are rounded to whole pixels, so a hash may differ from OpenCV's area resize
    # of the region by a bit pair or two
    gray = luminance(normalized(scene(5)))
    for crop, (left, top, keep, _) in zip(crop_hashes(gray), CROP_REGIONS, strict=True):
        assert hamming_distance(crop, perceptual_hash(cropped(gray, keep, left, top))) <= 4


def test_an_image_too_small_for_the_shortcut_is_hashed_region_by_region() -> None:
    gray = luminance(scene(6, 30, 20))
    regions = [cropped(gray, keep, left, top) for left, top, keep, _ in CROP_REGIONS]
    assert crop_hashes(gray) == tuple(perceptual_hash(region) for region in regions)


def test_crop_distance_looks_both_ways_and_is_none_without_crop_hashes() -> None:
    crop_of_b = 0b11  # 2 bits from the full hash 0
    assert crop_distance(0, (), (1 << 20) - 1, (crop_of_b,)) == 2
    assert crop_distance((1 << 20) - 1, (crop_of_b,), 0, ()) == 2
    assert crop_distance(0, (), 1, ()) is None


# Hand-made hashes for the decision rules: the query's full hash is 0, so a hash's distance to it
# is its number of set bits.
def bits(count: int) -> int:
    return (1 << count) - 1


def test_a_full_hash_match_is_taken_before_any_crop_hash_is_looked_at() -> None:
    candidates = [("crop", bits(16), (bits(0),)), ("full", bits(10), None)]
    assert match(0, (), candidates) == ("full", 10, "full")


def test_crop_matches_go_to_the_closest_then_the_first_arrived() -> None:
    candidates = [
        ("far", bits(16), (bits(8),)),
        ("first", bits(16), (bits(30), bits(4))),
        ("second", bits(18), (bits(4),)),
    ]
    assert match(0, (), candidates) == ("first", 4, "crop")


def test_crop_hashes_are_only_checked_within_the_candidate_radius() -> None:
    beyond = [("beyond", bits(CROP_CANDIDATE_RADIUS + 2), (bits(0),))]
    assert match(0, (), beyond) is None
    assert match(0, (), beyond, candidate_radius=EVERY_CANDIDATE) == ("beyond", 0, "crop")


def test_a_crop_match_is_never_looser_than_the_near_duplicate_radius() -> None:
    candidates = [("key", bits(16), (bits(4),))]
    assert match(0, (), candidates) == ("key", 4, "crop")
    assert match(0, (), candidates, radius=2) is None
    assert match(0, (), candidates, crop_radius=2) is None
    assert match(0, (), [("key", bits(16), (bits(6),))]) is None  # beyond CROP_MATCH_RADIUS


def test_a_stored_image_without_crop_hashes_is_only_matched_by_the_new_images_crops() -> None:
    stored = [("old", bits(16), None)]
    assert match(0, (), stored) is None
    assert match(0, (bits(16) ^ 0b111,), stored) == ("old", 3, "crop")
