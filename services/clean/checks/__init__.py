"""Image checks as pure functions: bytes or pixels in, metrics and check results out, no I/O.

``analyze_image`` is the one entry point the service needs; the modules hold the pieces:
``container`` (header, bombs, truncation, checksums), ``quality`` (sharpness, exposure,
information, colour, geometry), ``fingerprint`` (pixel digest, perceptual hash, crop hashes and
the near-match decision) and ``thresholds`` (defaults and the judgement of
metrics against them), and ``verification`` (local features that confirm or refuse a near
duplicate the hashes propose).
"""

from services.clean.checks.container import CORRUPTION_CODES, ImageHeader, read_header
from services.clean.checks.fingerprint import (
    CROP_CANDIDATE_RADIUS,
    CROP_MATCH_RADIUS,
    CROP_REGIONS,
    MAX_CANDIDATES,
    NEAR_DUPLICATE_RADIUS,
    VERIFY_CANDIDATE_RADIUS,
    VERIFY_RADIUS,
    Candidate,
    NearMatch,
    crop_distance,
    crop_hashes,
    hamming_distance,
    near_candidates,
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
from services.clean.checks.verification import (
    Features,
    Verification,
    compare_pictures,
    image_features,
    verify,
)

__all__ = [
    "CORRUPTION_CODES",
    "CROP_CANDIDATE_RADIUS",
    "CROP_MATCH_RADIUS",
    "CROP_REGIONS",
    "DEFAULT_THRESHOLDS",
    "MAX_CANDIDATES",
    "NEAR_DUPLICATE_RADIUS",
    "VERIFY_CANDIDATE_RADIUS",
    "VERIFY_RADIUS",
    "Candidate",
    "CheckResult",
    "Features",
    "ImageHeader",
    "ImageReport",
    "NearMatch",
    "Threshold",
    "Verification",
    "analyze_image",
    "compare_pictures",
    "crop_distance",
    "crop_hashes",
    "hamming_distance",
    "image_features",
    "judge_metrics",
    "near_candidates",
    "near_match",
    "perceptual_hash",
    "pixel_digest",
    "read_header",
    "verify",
]
