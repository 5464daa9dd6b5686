"""Image checks as pure functions: bytes or pixels in, metrics and check results out, no I/O.

``analyze_image`` is the one entry point the service needs; the modules hold the pieces:
``container`` (header, bombs, truncation, checksums), ``quality`` (sharpness, exposure,
information, colour, geometry), ``fingerprint`` (pixel digest, perceptual hash, multi-index
bands) and ``thresholds`` (defaults and the judgement of metrics against them).
"""

from services.clean.checks.container import CORRUPTION_CODES, ImageHeader, read_header
from services.clean.checks.fingerprint import (
    NEAR_DUPLICATE_RADIUS,
    band_keys,
    hamming_distance,
    nearest_within,
    perceptual_hash,
    pixel_digest,
    probe_keys,
)
from services.clean.checks.report import ImageReport, analyze_image
from services.clean.checks.thresholds import (
    DEFAULT_THRESHOLDS,
    CheckResult,
    Threshold,
    judge_metrics,
)

__all__ = [
    "CORRUPTION_CODES",
    "DEFAULT_THRESHOLDS",
    "NEAR_DUPLICATE_RADIUS",
    "CheckResult",
    "ImageHeader",
    "ImageReport",
    "Threshold",
    "analyze_image",
    "band_keys",
    "hamming_distance",
    "judge_metrics",
    "nearest_within",
    "perceptual_hash",
    "pixel_digest",
    "probe_keys",
    "read_header",
]
