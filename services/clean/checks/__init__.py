"""Image checks as pure functions: bytes or pixels in, metrics and check results out, no I/O.

``analyze_image`` is the one entry point the service needs; the modules hold the pieces:
``container`` (header, bombs, truncation, checksums), ``quality`` (sharpness, exposure,
information, colour, geometry), ``fingerprint`` (pixel digest, perceptual hash, crop hashes and
the near-match decision) and ``thresholds`` (defaults and the judgement of
metrics against them).
"""

from services.clean.checks.container import CORRUPTION_CODES, ImageHeader, read_header
from services.clean.checks.fingerprint import (
    CROP_CANDIDATE_RADIUS,
    CROP_MATCH_RADIUS,
    CROP_REGIONS,
    NEAR_DUPLICATE_RADIUS,
    NearMatch,
    crop_distance,
    crop_hashes,
    hamming_distance,
    near_match,
    perceptual_hash,
    pixel_digest,
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
    "CROP_CANDIDATE_RADIUS",
    "CROP_MATCH_RADIUS",
    "CROP_REGIONS",
    "DEFAULT_THRESHOLDS",
    "NEAR_DUPLICATE_RADIUS",
    "CheckResult",
    "ImageHeader",
    "ImageReport",
    "NearMatch",
    "Threshold",
    "analyze_image",
    "crop_distance",
    "crop_hashes",
    "hamming_distance",
    "judge_metrics",
    "near_match",
    "perceptual_hash",
    "pixel_digest",
    "read_header",
]
