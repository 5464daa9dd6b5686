"""One image in, one quality report out: header first, a single decode, then every check."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import cv2
import numpy as np
from numpy.typing import NDArray

from services.clean.checks.budget import DecodeBudget, decode_cost
from services.clean.checks.container import (
    CORRUPTION_CODES,
    ImageHeader,
    UnreadableImage,
    dimension_mismatch,
    read_header,
    sniff_format,
    structure_problems,
)
from services.clean.checks.fingerprint import crop_hashes, perceptual_hash, pixel_digest
from services.clean.checks.quality import (
    colour_sample,
    luminance,
    measure,
    normalized,
    sharpness_sample,
    to_eight_bit,
)
from services.clean.checks.thresholds import (
    DEFAULT_THRESHOLDS,
    CheckedFile,
    CheckResult,
    Threshold,
    judge_metrics,
)
from services.clean.checks.verification import image_features


@dataclass(frozen=True)
class ImageReport(CheckedFile):
    """Everything the image checks found out about one file.

    ``checks`` holds every threshold check that could be run (passed or not) and every
    structural defect found; ``metrics`` holds every measured value, so the report can be
    re-judged later against other thresholds with :func:`judge_metrics`. ``width`` and
    ``height`` are the decoded size, upright; they, the pixel digest and the perceptual hash
    are None when the pixels were never decoded. ``crop_hashes`` are the pHashes of the
    sub-regions that let a crop of up to 10 % be matched (see ``fingerprint.crop_hashes``),
    empty when there is no perceptual hash.
    """

    format: str | None
    checks: tuple[CheckResult, ...]
    metrics: Mapping[str, float] = field(default_factory=dict)
    width: int | None = None
    height: int | None = None
    pixel_sha256: str | None = None
    phash: int | None = None
    crop_hashes: tuple[int, ...] = ()
    # packed keypoints and thumbnail that verify a near-duplicate candidate (``verification``)
    features: bytes | None = None

    corruption_codes: ClassVar[frozenset[str]] = CORRUPTION_CODES

    @property
    def decoded(self) -> bool:
        """Whether the pixels were decoded (and so measured)."""
        return self.pixel_sha256 is not None


def analyze_image(
    data: bytes,
    thresholds: Mapping[str, Threshold] = DEFAULT_THRESHOLDS,
    budget: DecodeBudget | None = None,
) -> ImageReport:
    """Run every image check on one file's bytes.

    Order matters for safety and cost: the header is parsed first and a file declaring more
    pixels than the ``decompression_bomb`` threshold is refused without ever being decoded;
    structure defects are found from the bytes; then the image is decoded exactly once and
    every metric, the pixel digest and the perceptual hashes come from that one raster.
    With a ``budget``, the decode and checks wait until their estimated memory fits in it.
    """
    try:
        header = read_header(data)
    except UnreadableImage as unreadable:
        return ImageReport(sniff_format(data), (unreadable.as_result(),))
    metrics = {
        "declared_width": float(header.width),
        "declared_height": float(header.height),
        "declared_pixels": float(header.pixels),
    }
    problems = structure_problems(data, header)
    bomb = judge_metrics(metrics, thresholds)
    if any(not check.passed for check in bomb):
        return ImageReport(header.format, (*problems, *bomb), metrics)
    if budget is None:
        return _decoded_report(data, header, problems, bomb, metrics, thresholds)
    with budget.reserve(decode_cost(header)):
        return _decoded_report(data, header, problems, bomb, metrics, thresholds)


def _decoded_report(
    data: bytes,
    header: ImageHeader,
    problems: list[CheckResult],
    bomb: Sequence[CheckResult],
    metrics: dict[str, float],
    thresholds: Mapping[str, Threshold],
) -> ImageReport:
    """The rest of :func:`analyze_image`: one decode, then every check on that raster."""
    stored = _decode(data)
    if stored is None:
        message = f"the {header.format.upper()} could not be decoded"
        failed = CheckResult("decode_failed", False, None, None, message)
        return ImageReport(header.format, (*problems, failed, *bomb), metrics)
    mismatch = dimension_mismatch(header, stored.shape[1], stored.shape[0])
    if mismatch is not None:
        problems.append(mismatch)

    upright = _upright(stored, header.orientation)
    try:
        pixels = to_eight_bit(upright)
    except ValueError as unsupported:
        failed = CheckResult("decode_failed", False, None, None, str(unsupported))
        return ImageReport(header.format, (*problems, failed, *bomb), metrics)
    # Luma first, then one area-averaged shrink of one channel instead of three.
    luma = luminance(pixels)
    gray = normalized(luma)
    height, width = pixels.shape[:2]
    stored_colour = stored.ndim == 3 and header.channels not in (1, 2)
    colour = colour_sample(pixels) if stored_colour and pixels.ndim == 3 else None
    metrics.update(measure(gray, colour, width, height, sharpness_sample(luma, gray)))
    return ImageReport(
        header.format,
        (*problems, *judge_metrics(metrics, thresholds)),
        metrics,
        width,
        height,
        pixel_digest(upright),
        perceptual_hash(gray),
        crop_hashes(gray),
        image_features(gray).packed(),
    )


def _decode(data: bytes) -> NDArray[Any] | None:
    """The raster as stored (depth, alpha and orientation untouched), or None."""
    try:
        decoded: NDArray[Any] | None = cv2.imdecode(
            np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED
        )
    except cv2.error:
        return None
    return decoded


def _upright(pixels: NDArray[Any], orientation: int) -> NDArray[Any]:
    """The raster turned the way its EXIF/TIFF orientation tag says it is displayed."""
    if orientation == 2:
        return pixels[:, ::-1]
    if orientation == 3:
        return pixels[::-1, ::-1]
    if orientation == 4:
        return pixels[::-1]
    if orientation == 5:
        return pixels.swapaxes(0, 1)
    if orientation == 6:
        return pixels[::-1].swapaxes(0, 1)  # 90° clockwise
    if orientation == 7:
        return pixels[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return pixels[:, ::-1].swapaxes(0, 1)  # 90° counter-clockwise
    return pixels
