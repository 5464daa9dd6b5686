"""Image quality metrics: sharpness, exposure, information, colour and geometry.

Every pixel metric is measured on the image scaled down (never up) so that its longest side is at
most ``NORMALIZED_SIDE`` pixels: a 24-megapixel photo and its 640-pixel copy then score alike, and
the cost of the analysis does not grow with the resolution. Images are never scaled up, because
interpolation would invent blur that the file does not have.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

NORMALIZED_SIDE = 512
# Structure and sharpness are judged per TILE x TILE tile of the normalized luma. A tile's local
# contrast is the standard deviation of its pixels averaged in CONTRAST_CELL x CONTRAST_CELL
# cells, less the part the image's own noise explains: averaging divides sensor noise by 4, and
# what is left of it is estimated from the cells themselves and subtracted, so a flat field with
# noise of any strength reads near 0. A tile is structured when that contrast is at least
# STRUCTURE_FLOOR levels: a sky gradient or vignetting (a few levels across a tile) is not.
TILE = 32
CONTRAST_CELL = 4
STRUCTURE_FLOOR = 1.0
# Sharpness only looks at tiles with clearly more contrast than that, so that the edge measured
# is not noise, and reports their EDGE_PERCENTILE: the sharpest parts of the picture decide, as a
# subject in focus before a soft background is in focus.
EDGE_CONTRAST_FLOOR = 2.0
EDGE_PERCENTILE = 90.0
# A light Gaussian before taking differences, against single-pixel noise.
EDGE_PREFILTER_SIGMA = 0.5
# JPEG codes 8x8 blocks apart, and at low quality the block borders become steps no lens made;
# differences across them are ignored while a block still spans 2 normalized pixels or more.
JPEG_BLOCK = 8
# Entropy is taken on a small thumbnail: averaging pixels away removes sensor noise, which would
# otherwise give a blank frame 2-4 bits of "information", while the tones of a real scene remain.
ENTROPY_SIDE = 128
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
# The filter's response to white noise of deviation 1 has deviation 6; its median absolute value
# is 0.6745 times that.
_NOISE_MEDIAN_GAIN = 0.6745 * 6.0
CLIPPED_LEVEL = 250  # luma at or above which a pixel counts as blown out
COLOUR_SPREAD_PERCENTILE = 99.0
# Exposure is read from the ends of the luma histogram, not its mean: a dark-themed picture
# with its full range (lit windows at night, text on a dark UI) has a bright end, an
# under-exposed one does not; a bright scene with real shadows has a dark end, an
# over-exposed one (shadows lifted) does not. Half a per cent of the frame is enough to count.
HIGHLIGHT_PERCENTILE = 99.5
SHADOW_PERCENTILE = 0.5
# Edges are judged with the short side at most this long (the short side of the 512 x 384 frame
# every other metric uses), so a banner is not shrunk by its length, and with at most
# SHARPNESS_MAX_PIXELS pixels, so that the cost stays bounded.
SHARPNESS_SHORT_SIDE = 384
SHARPNESS_MAX_PIXELS = 4 * 512 * 384
# An axis is judged on a tile only where the luma changes along it by at least this share of the
# tile's range: vertical stripes have no edge across the rows, and must not read as soft there.
AXIS_RANGE_SHARE = 0.5
# An axis with fewer judged tiles than this share of the edge tiles (or 3) is not scored.
AXIS_MIN_SHARE = 0.05


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
    return _shrunk(pixels, side, cv2.INTER_AREA)


def sharpness_scale(width: int, height: int) -> float:
    """The scale (at most 1) at which edges are judged: see ``SHARPNESS_SHORT_SIDE``.

    For a 4:3 picture this is the :func:`normalized` scale; a wider one keeps more of its length.
    """
    return min(
        1.0,
        SHARPNESS_SHORT_SIDE / min(width, height),
        math.sqrt(SHARPNESS_MAX_PIXELS / (width * height)),
    )


def sharpness_sample(luma: NDArray[np.uint8], gray: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The full-size ``luma`` at :func:`sharpness_scale`; ``gray`` (its normalized copy) when
    that is the same size, so a 4:3 picture costs nothing more."""
    height, width = luma.shape
    scale = sharpness_scale(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size == (gray.shape[1], gray.shape[0]):
        return gray
    if scale >= 1.0:
        return luma
    return np.asarray(cv2.resize(luma, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def colour_sample(pixels: NDArray[np.uint8], side: int = NORMALIZED_SIDE) -> NDArray[np.uint8]:
    """A colour image scaled down (bilinear) so its longest side is at most ``side`` pixels.

    For :func:`colour_spread` only: a percentile of channel differences barely moves with the
    resampling (at most 2 levels on the benchmark corpus against an area-averaged copy), and a
    bilinear shrink of three channels costs a fifth of an area-averaged one.
    """
    return _shrunk(pixels, side, cv2.INTER_LINEAR)


def _shrunk(pixels: NDArray[np.uint8], side: int, interpolation: int) -> NDArray[np.uint8]:
    height, width = pixels.shape[:2]
    longest = max(height, width)
    if longest <= side:
        return pixels
    scale = side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(cv2.resize(pixels, size, interpolation=interpolation), dtype=np.uint8)


def luminance(pixels: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Rec. 601 luma of a BGR image; a grayscale image is its own luma."""
    if pixels.ndim == 2:
        return pixels
    return np.asarray(cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY), dtype=np.uint8)


@dataclass(frozen=True)
class TileContrast:
    """The local contrast of each tile of a normalized luma image, and the tile size in pixels.

    ``contrast`` is (rows, columns) in luma levels, with the image's noise discounted; pixels
    past the last whole tile on the right and at the bottom are left out.
    """

    contrast: NDArray[np.float32]
    tile_height: int
    tile_width: int


def tile_contrast(gray: NDArray[np.uint8]) -> TileContrast:
    """Each tile's denoised contrast: the spread of its cell averages less the noise's share.

    The noise is measured on the cells with Immerkær's filter, which is zero on any plane and
    so, on all but the busiest pictures, responds to little but noise; its median is a robust
    estimate of the noise's standard deviation.
    """
    height, width = gray.shape
    cell = CONTRAST_CELL if min(height, width) >= CONTRAST_CELL else 1
    size = (width // cell, height // cell)
    cells = _float(cv2.resize(gray.astype(np.float32), size, interpolation=cv2.INTER_AREA))
    residual = cv2.filter2D(cells, cv2.CV_32F, _NOISE_KERNEL, borderType=cv2.BORDER_REFLECT)
    noise = float(np.median(np.abs(residual))) / _NOISE_MEDIAN_GAIN
    per_tile_rows = min(TILE // cell, cells.shape[0])
    per_tile_cols = min(TILE // cell, cells.shape[1])
    rows, cols = cells.shape[0] // per_tile_rows, cells.shape[1] // per_tile_cols
    tiles = cells[: rows * per_tile_rows, : cols * per_tile_cols].reshape(
        rows, per_tile_rows, cols, per_tile_cols
    )
    variance = tiles.var(axis=(1, 3))
    contrast = np.sqrt(np.maximum(variance - noise**2, 0.0)).astype(np.float32)
    return TileContrast(contrast, per_tile_rows * cell, per_tile_cols * cell)


def structure_fraction(tiles: TileContrast) -> float:
    """Share of the frame with visible structure, 0 to 1 (0 = a blank, noisy or graded field).

    The share of tiles whose :func:`tile_contrast` is at least ``STRUCTURE_FLOOR``.
    """
    return float(np.count_nonzero(tiles.contrast >= STRUCTURE_FLOOR) / tiles.contrast.size)


def edge_sharpness(gray: NDArray[np.uint8], tiles: TileContrast, scale: float) -> float | None:
    """How steep the edges are for their contrast, 0 to about 0.8 (higher = sharper).

    Per tile with contrast at least ``EDGE_CONTRAST_FLOOR``: the steepest step between
    neighbouring pixels over the tile's range of luma, i.e. about one over the edge's width in
    pixels, so it does not depend on contrast or exposure. The score is the
    ``EDGE_PERCENTILE`` of those tiles. ``scale`` is the normalized over the decoded width,
    to place the JPEG block grid; steps across it are left out. None when no tile has enough
    contrast to judge (a flat or nearly black picture: ``low_information`` or ``dark`` names it).
    """
    height, width = gray.shape
    judged = tiles.contrast >= EDGE_CONTRAST_FLOOR
    if height < 2 or width < 2 or not judged.any():
        return None
    smoothed = _float(cv2.GaussianBlur(gray.astype(np.float32), (3, 3), EDGE_PREFILTER_SIGMA))
    across = _float(cv2.absdiff(smoothed[:-1, 1:], smoothed[:-1, :-1]))  # (i, j) to (i, j + 1)
    down = _float(cv2.absdiff(smoothed[1:, :-1], smoothed[:-1, :-1]))  # (i, j) to (i + 1, j)
    if JPEG_BLOCK * scale >= 2:
        across *= _within_blocks(width, scale)[None, :]
        down *= _within_blocks(height, scale)[:, None]
    step = _per_tile(_float(cv2.magnitude(across, down)), tiles, np.maximum)
    spread = np.subtract(
        _per_tile(smoothed, tiles, np.maximum), _per_tile(smoothed, tiles, np.minimum)
    )
    ratios = step[judged] / np.maximum(spread[judged], 1.0)
    return float(np.percentile(ratios, EDGE_PERCENTILE))


def _per_tile(
    values: NDArray[np.float32],
    tiles: TileContrast,
    reduce: np.ufunc,
) -> NDArray[np.float32]:
    """``reduce`` (np.maximum, np.minimum) over each tile of ``values``, as (rows, columns).

    ``values`` may lack the image's last row or column (differences between neighbours): the
    last tiles are then one short. Each band of tiles is reduced down its rows first, which
    runs over contiguous memory and is several times faster than reducing both tile axes of a
    4-D view.
    """
    rows, cols = tiles.contrast.shape
    height, width = tiles.tile_height, tiles.tile_width
    whole = min(rows, values.shape[0] // height)
    band_shape = (whole, height, values.shape[1])
    bands = reduce.reduce(values[: whole * height].reshape(band_shape), axis=1)
    if whole < rows:  # the last band, one row short
        bands = np.vstack([bands, reduce.reduce(values[whole * height :], axis=0, keepdims=True)])
    if bands.shape[1] < cols * width:  # the last column of tiles, one short
        bands = np.pad(bands, ((0, 0), (0, cols * width - bands.shape[1])), mode="edge")
    per_tile = reduce.reduce(bands[:, : cols * width].reshape(rows, cols, width), axis=2)
    return np.asarray(per_tile, dtype=np.float32)


def _float(pixels: NDArray[Any]) -> NDArray[np.float32]:
    """An OpenCV result, typed as the float32 array it is."""
    return np.asarray(pixels, dtype=np.float32)


def _within_blocks(length: int, scale: float) -> NDArray[np.float32]:
    """1 for each pair of neighbouring normalized pixels drawn from one JPEG block, else 0.

    Pixels ``j`` and ``j + 1`` average the decoded pixels from ``j / scale`` to
    ``(j + 2) / scale``; the pair is left out when a block border (a multiple of 8) lies
    strictly inside that span.
    """
    pair = np.arange(length - 1, dtype=np.float64)
    first, last = pair / scale, (pair + 2) / scale
    border = (np.ceil(last / JPEG_BLOCK) - 1) * JPEG_BLOCK  # the last border before ``last``
    return (border <= first).astype(np.float32)


def axis_sharpness(
    gray: NDArray[np.uint8], tiles: TileContrast, scale_x: float, scale_y: float
) -> float | None:
    """Edge sharpness along each axis apart, the softer axis deciding (0 to about 1).

    Like :func:`edge_sharpness`, the steepest step over the tile's range, but the steps across
    columns, across rows and across both diagonals are scored separately and the lowest score
    is kept: motion blur softens one direction only, and the magnitude of the gradient let the
    others hide it (at 45 degrees, the edges along the motion stay sharp on both axes). A tile
    counts for an axis only where the luma changes along that axis by ``AXIS_RANGE_SHARE`` of the
    tile's range (stripes have no edge across them; a diagonal needs both axes to change), and
    an axis with too few such tiles is not scored. ``scale_x`` and
    ``scale_y`` place the JPEG block grid, as in :func:`edge_sharpness`. None when no tile or
    axis can be judged.
    """
    rows, cols = tiles.contrast.shape
    tile_h, tile_w = tiles.tile_height, tiles.tile_width
    edged = tiles.contrast >= EDGE_CONTRAST_FLOOR
    if min(gray.shape) < 2 or tile_h < 2 or tile_w < 2 or not edged.any():
        return None
    region = gray[: rows * tile_h, : cols * tile_w].astype(np.float32)
    smoothed = _float(cv2.GaussianBlur(region, (3, 3), EDGE_PREFILTER_SIGMA))
    across = np.zeros_like(smoothed)  # the last column and row have no step: 0
    down = np.zeros_like(smoothed)
    across[:, :-1] = cv2.absdiff(smoothed[:, 1:], smoothed[:, :-1])
    down[:-1, :] = cv2.absdiff(smoothed[1:, :], smoothed[:-1, :])
    if JPEG_BLOCK * scale_x >= 2:
        across[:, :-1] *= _within_blocks(region.shape[1], scale_x)[None, :]
    if JPEG_BLOCK * scale_y >= 2:
        down[:-1, :] *= _within_blocks(region.shape[0], scale_y)[:, None]
    # Reductions one axis at a time, the row of tiles first (contiguous memory): several times
    # faster than reducing both tile axes of a 4-D view.
    height, width = smoothed.shape
    # rows of each tile, reduced as the columns of the transposed image (contiguous again)
    in_rows = np.ascontiguousarray(smoothed.T).reshape(cols, tile_w, height)
    row_max, row_min = in_rows.max(axis=1).T, in_rows.min(axis=1).T  # (height, cols)
    spread = row_max.reshape(rows, tile_h, cols).max(axis=1)
    spread -= row_min.reshape(rows, tile_h, cols).min(axis=1)
    # the range along each axis: the widest change within one row (or column) of the tile
    along_x = (row_max - row_min).reshape(rows, tile_h, cols).max(axis=1)
    in_columns = smoothed.reshape(rows, tile_h, width)
    column_range = in_columns.max(axis=1) - in_columns.min(axis=1)  # (rows, width)
    along_y = column_range.reshape(rows, cols, tile_w).max(axis=2)
    # the two diagonals: motion at 45 degrees leaves the edges along it sharp on both axes
    rising = np.zeros_like(smoothed)
    falling = np.zeros_like(smoothed)
    rising[:-1, :-1] = cv2.absdiff(smoothed[1:, :-1], smoothed[:-1, 1:])
    falling[:-1, :-1] = cv2.absdiff(smoothed[1:, 1:], smoothed[:-1, :-1])
    crossed = np.minimum(along_x, along_y)  # an edge across a diagonal changes both axes
    scores = []
    for steps, along in ((across, along_x), (down, along_y), (rising, crossed), (falling, crossed)):
        judged = edged & (along >= AXIS_RANGE_SHARE * spread)
        if np.count_nonzero(judged) < max(3.0, AXIS_MIN_SHARE * np.count_nonzero(edged)):
            continue
        step = (
            steps.reshape(rows, tile_h, width).max(axis=1).reshape(rows, cols, tile_w).max(axis=2)
        )
        ratios = step[judged] / np.maximum(spread[judged], 1.0)
        scores.append(float(np.percentile(ratios, EDGE_PERCENTILE)))
    return min(scores) if scores else None


def luma_percentiles(gray: NDArray[np.uint8], *percents: float) -> tuple[float, ...]:
    """Exact percentiles of a luma image, from one histogram."""
    cumulative = np.cumsum(cv2.calcHist([gray], [0], None, [256], [0, 256]).ravel())
    total = cumulative[-1]
    return tuple(float(np.searchsorted(cumulative, total * p / 100.0)) for p in percents)


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
    gray: NDArray[np.uint8],
    colour: NDArray[np.uint8] | None,
    width: int,
    height: int,
    detail: NDArray[np.uint8] | None = None,
) -> dict[str, float]:
    """Every quality metric of an image, keyed by metric name.

    ``gray`` is the :func:`normalized` luma and ``width`` and ``height`` the full decoded size.
    ``colour`` is the :func:`colour_sample` of a file that stores colour channels (None
    otherwise): only there is "grayscale stored as colour" a meaningful question. ``detail`` is
    the :func:`sharpness_sample` edges are judged on (``gray`` when None).
    """
    tiles = tile_contrast(gray)
    shadow, highlight = luma_percentiles(gray, SHADOW_PERCENTILE, HIGHLIGHT_PERCENTILE)
    metrics = {
        "width": float(width),
        "height": float(height),
        "megapixels": width * height / 1e6,
        "shortest_side": float(min(width, height)),
        "aspect_ratio": max(width, height) / min(width, height),
        "structure_fraction": structure_fraction(tiles),
        "mean_luminance": mean_luminance(gray),
        "clipped_highlights": clipped_highlights(gray),
        "shadow_luminance": shadow,
        "highlight_luminance": highlight,
        "entropy_bits": entropy_bits(normalized(gray, ENTROPY_SIDE)),
    }
    sharpness = edge_sharpness(gray, tiles, gray.shape[1] / width)
    if sharpness is not None:
        metrics["edge_sharpness"] = sharpness
    sample = gray if detail is None else detail
    sample_tiles = tiles if sample is gray else tile_contrast(sample)
    scales = (sample.shape[1] / width, sample.shape[0] / height)
    axes = axis_sharpness(sample, sample_tiles, *scales)
    if axes is not None:
        metrics["axis_sharpness"] = axes
    if colour is not None:
        metrics["colour_spread"] = colour_spread(colour)
    return metrics


def _percentile(values: NDArray[np.uint8], percent: float) -> float:
    """Exact percentile of 8-bit values from their histogram (no sort)."""
    cumulative = np.cumsum(np.bincount(values.ravel(), minlength=256))
    return float(np.searchsorted(cumulative, cumulative[-1] * percent / 100.0))
