"""Exposure read from the ends of the histogram, sharpness per axis at the image's own scale.

Generated pictures only: dark-themed and bright scenes that are well exposed, the same scenes
really under- or over-exposed, sharp banners, resampled and turned photos, motion blur.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from services.clean.checks import DEFAULT_THRESHOLDS, analyze_image, judge_metrics
from services.clean.checks.quality import sharpness_scale

Pixels = NDArray[np.uint8]


@cache
def shapes(seed: int, width: int = 640, height: int = 480) -> Pixels:
    """A sharp busy picture: a gradient, rectangles, circles and lines, light noise."""
    rng = np.random.default_rng(seed)
    image = np.empty((height, width, 3), np.uint8)
    image[:] = rng.integers(60, 190, 3)
    for _ in range(max(30, width * height // 8000)):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = int(rng.integers(4, max(5, min(width, height) // 4)))
        kind = int(rng.integers(3))
        if kind == 0:
            cv2.rectangle(image, (x, y), (x + size, y + size // 2), colour, -1)
        elif kind == 1:
            cv2.circle(image, (x, y), size // 2, colour, -1, cv2.LINE_AA)
        else:
            cv2.line(image, (x, y), (x + size, y + size // 3), colour, 2, cv2.LINE_AA)
    picture = noisy(image, 2.0, seed)
    picture.flags.writeable = False
    return picture


def noisy(image: NDArray[Any], sigma: float, seed: int = 0) -> Pixels:
    noise = np.random.default_rng(seed).normal(0.0, sigma, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def jpeg(image: NDArray[Any], quality: int = 90) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return bytes(data.tobytes())


def failed(image: Pixels) -> set[str]:
    return set(analyze_image(jpeg(image)).failed_codes)


def night_street() -> Pixels:
    """Dark buildings under a dark sky, a grid of lit windows (about 3 % of the frame)."""
    image = np.full((480, 640, 3), 12, np.uint8)
    image[150:440, 40:600] = 28
    for y in range(170, 420, 40):
        for x in range(60, 580, 60):
            if (x + y) % 3 == 0:
                image[y : y + 14, x : x + 14] = (120, 200, 245)
    return noisy(image, 2.0)


def dark_ui() -> Pixels:
    """A dark-mode editor: lines of light grey text on a near-black background."""
    image = np.full((600, 800, 3), 30, np.uint8)
    image[:, :160] = 45
    for row, y in enumerate(range(30, 590, 22)):
        text = "def value(self): return self.items[index]"[: 20 + row % 20]
        cv2.putText(image, text, (180, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (210, 210, 210), 1)
    return image


def snow() -> Pixels:
    """A bright snow field and sky, with dark trees and their blue-grey shadows."""
    image = np.full((480, 640, 3), 240, np.uint8)
    image[:180] = (235, 225, 215)
    for x in range(40, 640, 110):
        cv2.fillPoly(image, [np.array([[x, 120], [x - 30, 300], [x + 30, 300]])], (30, 50, 35))
        cv2.fillPoly(image, [np.array([[x, 300], [x + 150, 330], [x + 30, 300]])], (170, 150, 140))
    return noisy(image, 2.0)


def white_product() -> Pixels:
    """A white box on a white sweep, with a grey contact shadow and a dark label."""
    image = np.full((600, 800, 3), 248, np.uint8)
    cv2.ellipse(image, (420, 430), (200, 30), 0, 0, 360, (120, 120, 120), -1)
    image = np.asarray(cv2.GaussianBlur(image, (0, 0), 6), np.uint8)
    image[200:420, 300:500] = 235
    image[280:320, 340:460] = (60, 40, 160)
    return noisy(image, 1.0)


@pytest.mark.parametrize("scene", [night_street, dark_ui])
def test_a_dark_themed_picture_with_its_bright_end_is_not_dark(scene: Any) -> None:
    report = analyze_image(jpeg(scene()))
    assert report.metrics["mean_luminance"] < 40  # what the old default judged on
    assert "dark" not in report.failed_codes


@pytest.mark.parametrize("exposure", [0.05, 0.1, 0.15])
@pytest.mark.parametrize("noise", [0.0, 3.0])
def test_a_scene_at_a_small_fraction_of_its_exposure_is_dark(exposure: float, noise: float) -> None:
    under = noisy(shapes(1).astype(np.float32) * exposure, noise) if noise else None
    image = under if under is not None else (shapes(1) * exposure).astype(np.uint8)
    assert "dark" in failed(image)
    assert "dark" not in failed(shapes(1))


@pytest.mark.parametrize("scene", [snow, white_product])
def test_a_bright_scene_with_real_shadows_is_not_overexposed(scene: Any) -> None:
    report = analyze_image(jpeg(scene()))
    assert report.metrics["mean_luminance"] > 200  # what the old default judged on
    assert "overexposed" not in report.failed_codes


@pytest.mark.parametrize("scene", [shapes, lambda _: snow()])
def test_a_pushed_up_scene_with_lifted_shadows_is_overexposed(scene: Any) -> None:
    pushed = np.clip(scene(2).astype(np.float32) * 1.6 + 90, 0, 255).astype(np.uint8)
    assert "overexposed" in failed(pushed)


def test_a_stored_report_without_the_new_metrics_is_judged_on_the_old_ones() -> None:
    stored = {"mean_luminance": 20.0, "edge_sharpness": 0.2, "structure_fraction": 0.5}
    results = {r.code: r for r in judge_metrics(stored, DEFAULT_THRESHOLDS)}
    assert not results["dark"].passed and "mean_luminance" in results["dark"].message
    assert not results["blurry"].passed and "edge_sharpness" in results["blurry"].message
    assert results["overexposed"].passed
    assert {r.code for r in judge_metrics({"structure_fraction": 0.5})} == {"low_information"}


def test_a_sharp_strip_is_measured_at_its_height_and_its_blurred_copy_is_blurry() -> None:
    strip = shapes(3, 3000, 300)
    assert sharpness_scale(3000, 300) > 0.9  # not shrunk to 512 x 51
    sharp = analyze_image(jpeg(strip))
    assert "blurry" not in sharp.failed_codes
    soft = analyze_image(jpeg(cv2.GaussianBlur(strip, (0, 0), 2.5)))
    assert "blurry" in soft.failed_codes
    assert soft.metrics["edge_sharpness"] > DEFAULT_THRESHOLDS["blurry"].legacy.limit  # type: ignore[union-attr]


@pytest.mark.parametrize("factor", [0.5, 0.8, 1.25, 2.0])
@pytest.mark.parametrize("interpolation", [cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA])
def test_a_resampled_sharp_photo_is_not_blurry(factor: float, interpolation: int) -> None:
    if factor > 1 and interpolation == cv2.INTER_AREA:
        pytest.skip("area upscaling is nearest-neighbour in OpenCV")
    image = cv2.resize(shapes(4), None, fx=factor, fy=factor, interpolation=interpolation)
    assert "blurry" not in failed(np.asarray(image, np.uint8))


@pytest.mark.parametrize("degrees", [1.0, 3.0, -5.0])
def test_a_slightly_turned_sharp_photo_is_not_blurry(degrees: float) -> None:
    turn = cv2.getRotationMatrix2D((320, 240), degrees, 1.0)
    image = cv2.warpAffine(shapes(5), turn, (640, 480), borderMode=cv2.BORDER_REFLECT_101)
    assert "blurry" not in failed(np.asarray(image[30:450, 30:610], np.uint8))


@pytest.mark.parametrize("angle", [0, 45, 90])
def test_motion_blur_in_one_direction_is_blurry(angle: int) -> None:
    kernel = np.zeros((21, 21), np.float32)
    kernel[10, :] = 1.0 / 21
    if angle == 90:
        kernel = kernel.T.copy()
    elif angle == 45:
        kernel = np.asarray(np.eye(21) / 21, np.float32)
    image = np.asarray(cv2.filter2D(shapes(6), -1, kernel), np.uint8)
    report = analyze_image(jpeg(image))
    assert "blurry" in report.failed_codes
    assert report.metrics["axis_sharpness"] < report.metrics["edge_sharpness"]


def test_a_dark_mode_screenshot_is_neither_blurry_dark_nor_low_information() -> None:
    ok, data = cv2.imencode(".png", dark_ui())
    assert ok
    report = analyze_image(bytes(data.tobytes()))
    assert report.failed_codes.isdisjoint({"blurry", "dark", "low_information"})
