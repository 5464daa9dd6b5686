"""Image quality metrics: sharpness, exposure, information, colour and geometry.

Every pixel metric is measured on the image scaled down (never up) so that its longest side is at
most ``NORMALIZED_SIDE`` pixels: a 24-megapixel photo and its 640-pixel copy then score alike, and
the cost of the analysis does not grow with the resolution. Images are never scaled up, because
interpolation would invent blur that the file does not have.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

NORMALIZED_SIDE = 512
# Blur: the Laplacian's variance is measured per BLUR_TILE x BLUR_TILE tile, only over textured
# tiles (smoothed luma standard deviation >= TEXTURE_FLOOR), and the score is their
# BLUR_PERCENTILE: flat backdrops neither count as blurry nor dilute a sharp subject.
BLUR_TILE = 32
TEXTURE_FLOOR = 6.0
BLUR_PERCENTILE = 90.0
# A light Gaussian before the Laplacian: JPEG block edges and sensor noise are one-pixel steps the
# Laplacian would read as detail. On the generated blurred images sigma 0.5 cuts their score
# about 3x for noise and 2x for JPEG quality 5 while sharp images keep half of theirs; a wider
# sigma erases real detail too (at sigma 1 sharp and blurred barely separate).
BLUR_PREFILTER_SIGMA = 0.5
# Entropy is taken on a small thumbnail: averaging pixels away removes sensor noise, which would
# otherwise give a blank frame 2-4 bits of "information", while the tones of a real scene remain.
ENTROPY_SIDE = 128
CLIPPED_LEVEL = 250  # luma at or above which a pixel counts as blown out
COLOUR_SPREAD_PERCENTILE = 99.0


def to_eight_bit(decoded: NDArray[Any]) -> NDArray[np.uint8]:
    """A decoded raster as 8-bit grayscale (HxW) or BGR (HxWx3), alpha dropped.

    16-bit samples keep their top byte; floating-point samples are taken as 0..1.
    """
    pixels: NDArray[Any] = decoded
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    elif pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = pixels[:, :, :3]
    elif pixels.ndim == 3 and pixels.shape[2] == 2:  # grayscale + alpha
        pixels = pixels[:, :, 0]
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    elif pixels.dtype.kind == "f":
        pixels = (np.clip(pixels, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif pixels.dtype != np.uint8:
        raise ValueError(f"unsupported sample type {pixels.dtype}")
    return np.ascontiguousarray(pixels, dtype=np.uint8)


def normalized(pixels: NDArray[np.uint8], side: int = NORMALIZED_SIDE) -> NDArray[np.uint8]:
    """The image scaled down (area-averaged) so its longest side is at most ``side`` pixels."""
    height, width = pixels.shape[:2]
    longest = max(height, width)
    if longest <= side:
        return pixels
    scale = side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def luminance(pixels: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Rec. 601 luma of a BGR image; a grayscale image is its own luma."""
    if pixels.ndim == 2:
        return pixels
    return np.asarray(cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY), dtype=np.uint8)


def blur_score(gray: NDArray[np.uint8]) -> float:
    """Sharpness: variance of the Laplacian in the textured tiles of an image (higher = sharper).

    Expects a :func:`normalized` luma image. Each 32x32 tile whose luma varies at all (standard
    deviation at least ``TEXTURE_FLOOR``) contributes its Laplacian variance, and the score is
    the 90th percentile of those: a sharp subject on a flat backdrop scores as sharp as its
    edges are, while a blurred image has soft edges in every tile. Scales with contrast
    squared, so a very dark image also reads soft (the ``dark`` check names that cause).
    """
    smoothed = cv2.GaussianBlur(gray.astype(np.float32), (0, 0), BLUR_PREFILTER_SIGMA)
    laplacian = np.asarray(cv2.Laplacian(smoothed, cv2.CV_32F, ksize=1), dtype=np.float32)
    rows, cols = laplacian.shape[0] // BLUR_TILE, laplacian.shape[1] // BLUR_TILE
    if rows == 0 or cols == 0:  # smaller than one tile: the whole image is the tile
        return float(laplacian.var())
    height, width = rows * BLUR_TILE, cols * BLUR_TILE
    tile_shape = (rows, BLUR_TILE, cols, BLUR_TILE)
    energy = laplacian[:height, :width].reshape(tile_shape).var(axis=(1, 3)).ravel()
    texture = smoothed[:height, :width].reshape(tile_shape).std(axis=(1, 3)).ravel()
    textured = energy[texture >= TEXTURE_FLOOR]
    # an image with no textured tile at all is measured over all of them (and scores low)
    return float(np.percentile(textured if textured.size else energy, BLUR_PERCENTILE))


def mean_luminance(gray: NDArray[np.uint8]) -> float:
    """Average luma, 0 (black) to 255 (white)."""
    return float(gray.mean())


def clipped_highlights(gray: NDArray[np.uint8]) -> float:
    """Fraction of pixels blown out to white (luma ≥ ``CLIPPED_LEVEL``), 0 to 1."""
    return float(np.count_nonzero(gray >= CLIPPED_LEVEL) / gray.size)


def entropy_bits(gray: NDArray[np.uint8]) -> float:
    """Shannon entropy of the luma histogram in bits, 0 (one flat tone) to 8.

    Measured (by :func:`measure`) on a thumbnail at most ``ENTROPY_SIDE`` pixels long.
    """
    counts = np.bincount(gray.ravel(), minlength=256)
    probabilities = counts[counts > 0] / gray.size
    return float(-(probabilities * np.log2(probabilities)).sum())


def colour_spread(bgr: NDArray[np.uint8]) -> float:
    """How far a colour image is from gray: the 99th percentile of max - min over its channels.

    A grayscale picture saved as colour has equal channels, give or take JPEG rounding (a level
    or two); the percentile ignores a few stray coloured pixels such as a small logo.
    """
    blue, green, red = cv2.split(bgr)  # per-plane max/min: far faster than reducing axis 2
    highest = cv2.max(cv2.max(blue, green), red)
    lowest = cv2.min(cv2.min(blue, green), red)
    spread = np.asarray(cv2.subtract(highest, lowest), dtype=np.uint8)
    return _percentile(spread, COLOUR_SPREAD_PERCENTILE)


def measure(
    small: NDArray[np.uint8], gray: NDArray[np.uint8], width: int, height: int, stored_colour: bool
) -> dict[str, float]:
    """Every quality metric of an image, keyed by metric name.

    ``small`` is the :func:`normalized` 8-bit image and ``gray`` its :func:`luminance`;
    ``width`` and ``height`` are the full decoded size. The colour spread is only measured when
    the file stores colour channels, where "grayscale stored as colour" is a meaningful question.
    """
    metrics = {
        "width": float(width),
        "height": float(height),
        "megapixels": width * height / 1e6,
        "shortest_side": float(min(width, height)),
        "aspect_ratio": max(width, height) / min(width, height),
        "blur_score": blur_score(gray),
        "mean_luminance": mean_luminance(gray),
        "clipped_highlights": clipped_highlights(gray),
        "entropy_bits": entropy_bits(normalized(gray, ENTROPY_SIDE)),
    }
    if stored_colour and small.ndim == 3:
        metrics["colour_spread"] = colour_spread(small)
    return metrics


def _percentile(values: NDArray[np.uint8], percent: float) -> float:
    """Exact percentile of 8-bit values from their histogram (no sort)."""
    cumulative = np.cumsum(np.bincount(values.ravel(), minlength=256))
    return float(np.searchsorted(cumulative, cumulative[-1] * percent / 100.0))
