"""Thresholds, check results, and the judgement of measured metrics against thresholds.

Measuring and judging are kept apart on purpose: an asset's metrics are measured once and stored,
and a dataset whose thresholds change is re-judged from the stored metrics alone, without
downloading or decoding anything again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar, Literal

FailsWhen = Literal["below", "above"]

# A stretch of a video a check is about, [start, end] in seconds (start == end for one moment).
Range = tuple[float, float]
# Results name at most this many ranges (the first ones found), so a report stays small.
MAX_RANGES = 20


@dataclass(frozen=True)
class Threshold:
    """The limit one metric must respect for its check to pass.

    A check fails when the metric is strictly ``below`` (or strictly ``above``) ``limit``.
    """

    metric: str
    limit: float
    fails_when: FailsWhen
    summary: str  # what a failure means, for people: "image is blurry"
    # judged instead when ``metric`` was not measured: the metric a check used before, which
    # reports stored before the change still hold (until they are analysed again)
    legacy: Threshold | None = None

    def is_breached_by(self, value: float) -> bool:
        """Whether ``value`` fails this threshold."""
        return value < self.limit if self.fails_when == "below" else value > self.limit


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one asset.

    ``value`` and ``threshold`` are None for structural defects that have no scale (a truncated
    file is truncated); ``message`` always says what was found in words an ops lead can act on.
    ``ranges`` says where in a video the check found it (empty for images and when unknown).
    """

    code: str
    passed: bool
    value: float | None
    threshold: float | None
    message: str
    ranges: tuple[Range, ...] = ()


# Defaults calibrated on the clean benchmark's labelled corpus; docs/cleaning.md says why
# each one is where it is. Every metric is measured on the image scaled so that its longest side is
# at most NORMALIZED_SIDE pixels, so the numbers mean the same at any resolution.
DEFAULT_THRESHOLDS: Mapping[str, Threshold] = MappingProxyType(
    {
        "decompression_bomb": Threshold(
            "declared_pixels", 100_000_000, "above", "declared size is too large to decode safely"
        ),
        "blurry": Threshold(
            "axis_sharpness",
            0.30,
            "below",
            "image is blurry",
            Threshold("edge_sharpness", 0.35, "below", "image is blurry"),
        ),
        "dark": Threshold(
            "highlight_luminance",
            60.0,
            "below",
            "image is too dark",
            Threshold("mean_luminance", 40.0, "below", "image is too dark"),
        ),
        "overexposed": Threshold(
            "shadow_luminance",
            120.0,
            "above",
            "image is overexposed",
            Threshold("mean_luminance", 200.0, "above", "image is overexposed"),
        ),
        "low_information": Threshold(
            "structure_fraction", 0.02, "below", "image carries little detail"
        ),
        "grayscale_as_colour": Threshold(
            "colour_spread", 4.0, "below", "grayscale image stored as colour"
        ),
        "odd_aspect_ratio": Threshold("aspect_ratio", 4.0, "above", "aspect ratio is unusual"),
        "too_small": Threshold("shortest_side", 64, "below", "image is too small"),
        "too_large": Threshold("megapixels", 50.0, "above", "image is too large"),
    }
)


def judge(
    code: str, threshold: Threshold, value: float, ranges: tuple[Range, ...] = ()
) -> CheckResult:
    """The result of holding one measured value against its threshold (found at ``ranges``)."""
    breached = threshold.is_breached_by(value)
    if breached:
        relation = "<" if threshold.fails_when == "below" else ">"
        message = (
            f"{threshold.summary}: {threshold.metric} {value:.4g} {relation} {threshold.limit:.4g}"
        )
    else:
        relation = ">=" if threshold.fails_when == "below" else "<="
        message = f"{threshold.metric} {value:.4g} {relation} {threshold.limit:.4g}"
    return CheckResult(code, not breached, value, threshold.limit, message, ranges)


def judge_metrics(
    metrics: Mapping[str, float],
    thresholds: Mapping[str, Threshold] = DEFAULT_THRESHOLDS,
    ranges: Mapping[str, tuple[Range, ...]] | None = None,
) -> tuple[CheckResult, ...]:
    """Every threshold whose metric was measured, held against it, in the thresholds' order.

    A metric that was not measured (e.g. ``colour_spread`` of an image stored as grayscale, where
    the question does not arise) yields no result rather than a made-up pass. ``ranges`` says,
    per check code, where in a video each check found what it measured.
    """
    where = ranges or {}
    thresholds = {code: _measurable(t, metrics) for code, t in thresholds.items()}
    return tuple(
        judge(code, threshold, metrics[threshold.metric], where.get(code, ()))
        for code, threshold in thresholds.items()
        if threshold.metric in metrics
    )


def _measurable(threshold: Threshold, metrics: Mapping[str, float]) -> Threshold:
    """``threshold``, or its legacy one when only the legacy metric was measured."""
    legacy = threshold.legacy
    if threshold.metric not in metrics and legacy is not None and legacy.metric in metrics:
        return legacy
    return threshold


# The message of a passed result that only carries where a measured check looked (see
# :func:`located`).
LOCATED = "where the check found what it measured"


def located(code: str, ranges: tuple[Range, ...]) -> CheckResult:
    """A passed result that carries where in a video check ``code`` found what it measured.

    Kept with a report's structural findings, which are stored as they are, so that a check
    re-judged later from stored metrics still names its ranges; a passed result never counts
    against an asset.
    """
    return CheckResult(code, True, None, None, LOCATED, ranges)


def ranges_by_code(results: Iterable[CheckResult]) -> dict[str, tuple[Range, ...]]:
    """The ranges carried by :func:`located` results, per check code."""
    return {r.code: r.ranges for r in results if r.passed and r.message == LOCATED and r.ranges}


class UnreadableMedia(Exception):
    """A file that cannot be read, or not completely; ``code`` says which way."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def as_result(self) -> CheckResult:
        """This failure as a failed check."""
        return CheckResult(self.code, False, None, None, self.message)


class CheckedFile:
    """What image and video reports share: reading their ``checks``.

    Subclasses hold ``checks`` and name the codes that mean the file is damaged.
    """

    checks: tuple[CheckResult, ...]
    corruption_codes: ClassVar[frozenset[str]] = frozenset()

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        """The checks that failed, in the order they ran."""
        return tuple(check for check in self.checks if not check.passed)

    @property
    def failed_codes(self) -> frozenset[str]:
        """The codes of the failed checks."""
        return frozenset(check.code for check in self.failures)

    @property
    def structural(self) -> tuple[CheckResult, ...]:
        """The structural defects found: truncation, checksums, decode failure and the like.

        Unlike threshold checks these cannot be re-derived from ``metrics``, so a stored report
        keeps them as they are.
        """
        return tuple(check for check in self.failures if check.code in self.corruption_codes)

    @property
    def corrupt(self) -> bool:
        """Whether the file is damaged or unreadable (as opposed to readable but poor)."""
        return not self.failed_codes.isdisjoint(self.corruption_codes)
