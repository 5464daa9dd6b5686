"""A dataset's cleaning policy and the verdict it gives on a report (pure, no I/O).

The policy says, per check code, whether a failure rejects the asset, only flags it, or is
ignored, and may move any threshold. Verdicts are computed from stored metrics and
structural findings, so a policy change re-judges a dataset without re-reading any file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, field_validator, model_validator
from pydantic.config import JsonDict

from services.clean.checks import (
    CORRUPTION_CODES,
    DEFAULT_THRESHOLDS,
    NEAR_DUPLICATE_RADIUS,
    CheckResult,
    Threshold,
    judge_metrics,
)
from services.clean.checks.thresholds import ranges_by_code
from services.clean.checks.video import DEFAULT_VIDEO_THRESHOLDS, VIDEO_CORRUPTION_CODES

Action = Literal["reject", "flag", "ignore"]

DUPLICATE_CODES = frozenset({"exact_duplicate", "near_duplicate", "video_duplicate"})

# Defaults: anything unusable for training rejects; oddities a human may still want are flags.
DEFAULT_ACTIONS: Mapping[str, Action] = {
    **dict.fromkeys(sorted(CORRUPTION_CODES), "reject"),
    "decompression_bomb": "reject",
    "exact_duplicate": "reject",
    "near_duplicate": "reject",
    "video_duplicate": "reject",
    "blurry": "reject",
    "dark": "reject",
    "overexposed": "reject",
    "low_information": "reject",
    "too_small": "reject",
    "grayscale_as_colour": "flag",
    "odd_aspect_ratio": "flag",
    "too_large": "flag",
    "file_too_large": "reject",
    # videos: damage and unusable footage reject; timing oddities are worth knowing, not fatal
    **dict.fromkeys(sorted(VIDEO_CORRUPTION_CODES), "reject"),
    "decode_errors": "reject",
    "too_short": "reject",
    "frozen": "reject",
    "too_long": "flag",
    "frame_count_mismatch": "flag",
    "duration_mismatch": "flag",
    "variable_frame_rate": "flag",
    "non_increasing_timestamps": "flag",
    "duplicate_frames": "flag",
    "black_frames": "flag",
    "blank_frames": "flag",
    "stutter": "flag",
    "black_gap": "flag",
    "blended_frames": "flag",
    "combed_frames": "flag",
}
ALL_THRESHOLDS: Mapping[str, Threshold] = {**DEFAULT_THRESHOLDS, **DEFAULT_VIDEO_THRESHOLDS}
KNOWN_CODES = frozenset(DEFAULT_ACTIONS)


def _keys_among(codes: Iterable[str]) -> JsonDict:
    """JSON Schema of an object whose keys are some of ``codes``."""
    return {"propertyNames": {"enum": [code for code in sorted(codes)]}}


class PolicyRules(BaseModel):
    """What a dataset's owner may set; anything left out keeps its default."""

    model_config = ConfigDict(extra="forbid")

    # The codes are named in the schema too, so a client knows which keys are accepted.
    actions: dict[str, Action] = Field(
        default_factory=dict,
        description="check code -> reject | flag | ignore",
        json_schema_extra=_keys_among(KNOWN_CODES),
    )
    # Strict numbers: a threshold of "0.5" or a radius of false is a client's mistake.
    thresholds: dict[str, StrictFloat] = Field(
        default_factory=dict,
        description="check code -> limit (see GET .../policy for defaults)",
        json_schema_extra=_keys_among(ALL_THRESHOLDS),
    )
    near_duplicate_radius: int = Field(
        default=NEAR_DUPLICATE_RADIUS,
        ge=0,
        le=NEAR_DUPLICATE_RADIUS,
        description="largest pHash Hamming distance that counts as a near duplicate",
    )

    @field_validator("near_duplicate_radius", mode="before")
    @classmethod
    def _a_json_integer(cls, value: object) -> object:
        if isinstance(value, bool | str):
            raise ValueError("must be an integer")
        return value

    @model_validator(mode="after")
    def _known_codes(self) -> PolicyRules:
        unknown = (set(self.actions) - KNOWN_CODES) | (set(self.thresholds) - set(ALL_THRESHOLDS))
        if unknown:
            raise ValueError(f"unknown check code(s): {', '.join(sorted(unknown))}")
        return self

    def action(self, code: str) -> Action:
        """What a failure of ``code`` does under this policy."""
        return self.actions.get(code, DEFAULT_ACTIONS.get(code, "reject"))

    def threshold_set(self) -> dict[str, Threshold]:
        """The default image and video thresholds with this policy's limits applied."""
        return {
            code: replace(t, limit=self.thresholds.get(code, t.limit))
            for code, t in ALL_THRESHOLDS.items()
        }


@dataclass(frozen=True)
class SharedFootage:
    """Where a duplicate video shows the original's footage: ``start``-``end`` seconds of the
    copy are ``original_start``-``original_end`` of the original (from each clip's start);
    ``matched`` of ``compared`` samples in that stretch showed the same picture."""

    start: float
    end: float
    original_start: float
    original_end: float
    matched: int
    compared: int

    @property
    def seconds(self) -> float:
        """How long the shared footage lasts."""
        return self.end - self.start

    def describe(self) -> str:
        """The ranges as people read them: "2.00-9.50 s = 0.00-7.50 s of the original"."""
        return (
            f"{self.start:.2f}-{self.end:.2f} s = {self.original_start:.2f}-"
            f"{self.original_end:.2f} s of the original"
        )


@dataclass(frozen=True)
class Duplicate:
    """The asset this one copies, and how closely."""

    code: Literal["exact_duplicate", "near_duplicate", "video_duplicate"]
    of_asset: str
    distance: int
    # how a near duplicate matched: its full hash or a crop's (not stored; for diagnosis)
    via: Literal["full", "crop"] | None = None
    # a video duplicate's shared footage
    overlap: SharedFootage | None = None


@dataclass(frozen=True)
class Verdict:
    """The outcome for one asset: rejected if any blocking reason, with every flag beside."""

    reasons: tuple[CheckResult, ...]
    flags: tuple[CheckResult, ...]

    @property
    def rejected(self) -> bool:
        """Whether the asset is unusable under the policy."""
        return bool(self.reasons)


def near_duplicate_comparable(metrics: Mapping[str, float], rules: PolicyRules) -> bool:
    """Whether an image's pHash is worth comparing: not for a near-flat picture.

    The hash of an image with (almost) no content is noise around a constant, so it "matches"
    every other flat picture at distance 0. Such images are neither looked up nor indexed;
    the low-information check reports them instead.
    """
    threshold = rules.threshold_set()["low_information"]
    value = metrics.get(threshold.metric)
    return value is not None and not threshold.is_breached_by(value)


def duplicate_result(duplicate: Duplicate, radius: int) -> CheckResult | None:
    """The duplicate finding as a failed check, if it still counts under ``radius``."""
    if duplicate.code == "near_duplicate" and duplicate.distance > radius:
        return None
    if duplicate.code == "video_duplicate" and duplicate.overlap is not None:
        footage = duplicate.overlap
        return CheckResult(
            duplicate.code,
            False,
            round(footage.seconds, 3),
            0.0,
            f"the same footage as asset {duplicate.of_asset}: {footage.describe()}",
        )
    kind = "the same pixels as" if duplicate.code == "exact_duplicate" else "a near copy of"
    return CheckResult(
        duplicate.code,
        False,
        float(duplicate.distance),
        float(radius) if duplicate.code == "near_duplicate" else 0.0,
        f"{kind} asset {duplicate.of_asset} (pHash distance {duplicate.distance})",
    )


def judge(
    metrics: Mapping[str, float],
    structural: Iterable[CheckResult],
    duplicate: Duplicate | None,
    rules: PolicyRules,
) -> Verdict:
    """Hold stored findings against a policy; a re-judged check keeps the ranges stored for it."""
    structural = list(structural)
    failures = [c for c in structural if not c.passed]
    judged = judge_metrics(metrics, rules.threshold_set(), ranges_by_code(structural))
    failures += [c for c in judged if not c.passed]
    if duplicate is not None:
        found = duplicate_result(duplicate, rules.near_duplicate_radius)
        if found is not None:
            failures.append(found)
    reasons = tuple(c for c in failures if rules.action(c.code) == "reject")
    flags = tuple(c for c in failures if rules.action(c.code) == "flag")
    return Verdict(reasons, flags)
