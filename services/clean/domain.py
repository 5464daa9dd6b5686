"""Clean's decisions about one asset, as pure functions (no I/O, no SQL).

What a check report counts as found, what an asset duplicates, the verdict, the report row
that stores it and the event that announces it, and whether a stored report's verdict changes
under a new policy. The use cases read and write around these; the accuracy benchmark calls
the same functions, so its figures measure the service's own decisions.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, NotRequired, Protocol, TypedDict

from services.clean.checks import (
    NEAR_DUPLICATE_RADIUS,
    VERIFY_RADIUS,
    CheckResult,
    Features,
    ImageReport,
    compare_pictures,
    verify,
)
from services.clean.checks.thresholds import located
from services.clean.checks.verification import structured, verifiable
from services.clean.checks.video import VideoReport
from services.clean.checks.video.fingerprint import VideoSignature
from services.clean.near_index import DatasetHashes, HashRows, Shortlist
from services.clean.policy import (
    Duplicate,
    PolicyRules,
    SharedFootage,
    Verdict,
    judge,
    near_duplicate_comparable,
)
from services.clean.video_index import DatasetVideos, StoredSignature
from shared.events import AssetCleanedV1, AssetRejectedV1, QualityReason, VideoOverlap

Status = Literal["cleaned", "rejected"]


@dataclass(frozen=True)
class Findings:
    """What reading and checking one file found, before it is judged."""

    structural: list[CheckResult]
    metrics: dict[str, float]
    pixels: str | None = None  # digest of the decoded pixels
    phash: int | None = None  # only when near-duplicate comparison makes sense
    crops: tuple[int, ...] = ()  # crop hashes, with the phash
    features: bytes | None = None  # packed keypoints and thumbnail, with the phash
    video: VideoSignature | None = None  # a video's fingerprint, timed from its start


def image_findings(report: ImageReport, rules: PolicyRules) -> Findings:
    """An image's findings: its structural defects (threshold checks are re-derived from the
    metrics when judged), and its perceptual hashes only if they are worth comparing."""
    comparable = report.phash is not None and near_duplicate_comparable(report.metrics, rules)
    return Findings(
        list(report.structural),
        dict(report.metrics),
        report.pixel_sha256,
        report.phash if comparable else None,
        report.crop_hashes if comparable else (),
        report.features if comparable else None,
    )


def video_findings(report: VideoReport) -> Findings:
    """A video's findings: structural defects and metrics, and where each measured check
    looked, kept with the structural findings so a re-judged check still names its time
    ranges; and, when any frame with content decoded, its fingerprint for duplicates."""
    where = [located(code, ranges) for code, ranges in report.ranges.items() if ranges]
    scan = report.scan
    fingerprint = scan.fingerprint if scan is not None else None
    signature = None
    if scan is not None and fingerprint and scan.first_timestamp is not None:
        signature = fingerprint.from_start(scan.first_timestamp, scan.decoded_duration)
    return Findings([*report.structural, *where], dict(report.metrics), video=signature)


def find_video_duplicate(
    asset_id: uuid.UUID, arrival: int, findings: Findings, videos: DatasetVideos
) -> Duplicate | None:
    """The earlier video this one shows footage of (the longest shared stretch, see
    ``DatasetVideos.find``), if any; afterwards the video is in ``videos`` for later ones."""
    if findings.video is None:
        return None
    found = videos.find(findings.video)
    videos.add(StoredSignature(arrival, asset_id, findings.video))
    if found is None:
        return None
    o = found.overlap
    footage = SharedFootage(o.start, o.end, o.other_start, o.other_end, o.matched, o.compared)
    return Duplicate("video_duplicate", str(found.asset_id), 0, overlap=footage)


def unread_findings(size_bytes: int, max_bytes: int) -> Findings:
    """The finding of an image too large to be read at all."""
    message = f"{size_bytes} bytes is more than the {max_bytes} read"
    return Findings(
        [CheckResult("file_too_large", False, float(size_bytes), max_bytes, message)], {}
    )


def find_duplicate(
    asset_id: uuid.UUID,
    arrival: int,
    findings: Findings,
    originals: dict[str, uuid.UUID],
    copy: DatasetHashes,
    rules: PolicyRules,
    known: Mapping[uuid.UUID, bytes] | None = None,
    shortlist: Shortlist | None = None,
) -> Duplicate | None:
    """The earlier asset this one duplicates, if any, and the asset joins the comparisons.

    Exact first: the earliest asset with the same decoded pixels (``originals`` maps a pixel
    digest to it: stored ones, then earlier in the same run). Else near: the closest hash in
    the dataset's ``copy`` within the policy's radius (first arrived among equals), only for
    an image whose hash is comparable, verified with the stored features ``known`` (asset id
    -> packed features) where both sides have them (see :func:`near_duplicate`; ``shortlist``
    is stage 1's answer found earlier for these hashes, if any). Afterwards
    the asset is in ``originals`` and its hash in ``copy``, so the assets judged after it
    compare with it.
    """
    duplicate = exact_duplicate(asset_id, findings.pixels, originals)
    if findings.phash is None:
        return duplicate
    if duplicate is None:
        duplicate = near_duplicate(
            findings.phash, findings.crops, copy, rules, findings.features, known or {}, shortlist
        )
    copy.extend(HashRows.one(arrival, asset_id, findings.phash, findings.crops))
    return duplicate


def exact_duplicate(
    asset_id: uuid.UUID, pixels: str | None, originals: dict[str, uuid.UUID]
) -> Duplicate | None:
    """Same decoded pixels as an earlier asset; else the asset becomes the original."""
    if pixels is None:
        return None
    original = originals.setdefault(pixels, asset_id)
    if original == asset_id:
        return None
    return Duplicate("exact_duplicate", str(original), 0)


def near_duplicate(
    phash: int,
    crops: Sequence[int],
    copy: DatasetHashes,
    rules: PolicyRules,
    features: bytes | None = None,
    known: Mapping[uuid.UUID, bytes] | None = None,
    shortlist: Shortlist | None = None,
) -> Duplicate | None:
    """The earlier asset an image nearly duplicates (closest, then first arrived).

    Two stages. The hashes propose the closest few earlier images within a wide radius
    (``DatasetHashes.candidates``); each is then verified with local features
    (``checks.verify``), closest first, and the first that verifies is the match. A candidate
    with too few keypoints on either side (tiny or flat pictures) must match by the hashes,
    then by its pictures (``checks.compare_pictures``, aligned as the hash match says); only
    where either side has no stored features (stored before features were) do the hashes
    decide alone, as before verification existed. A verified match reports its hash
    distance, capped at the policy's radius (it counts as within it); a policy that tightens
    the radius below the default tightens the verified search as much (a radius of 6 verifies
    candidates within 10 bits instead of 14). A ``shortlist`` found earlier for the same
    hashes (to read the candidates' features) is completed with the rows added since, not
    found again.
    """
    radius = rules.near_duplicate_radius
    mine = Features.unpacked(features) if features is not None else None
    if mine is None:
        found = copy.nearest(phash, crops, radius=radius)
        if found is None:
            return None
        return Duplicate("near_duplicate", str(found.asset_id), found.distance, found.via)
    stored = known or {}
    for proposed in copy.shortlist(phash, crops, shortlist).proposed:
        hashes = proposed.hashes
        theirs = stored.get(proposed.asset_id)
        other = Features.unpacked(theirs) if theirs is not None else None
        reach = hashes.distance <= radius + VERIFY_RADIUS - NEAR_DUPLICATE_RADIUS
        if other is None:
            matched = hashes.hash_match(radius)
        elif not verifiable(mine) or not verifiable(other):
            beyond = reach and structured(mine) and structured(other)
            compared = hashes.hash_match(radius) or beyond
            matched = compared and compare_pictures(mine, other, hashes.via).same
        else:
            matched = reach and verify(mine, other).same
        if matched:
            distance = min(hashes.distance, radius)
            return Duplicate("near_duplicate", str(proposed.asset_id), distance, hashes.via)
    return None


def verdict(findings: Findings, duplicate: Duplicate | None, rules: PolicyRules) -> Verdict:
    """The verdict on fresh findings and the duplicate decision, under a dataset's policy."""
    return judge(findings.metrics, findings.structural, duplicate, rules)


def status(verdict: Verdict) -> Status:
    """The stored status of a verdict."""
    return "rejected" if verdict.rejected else "cleaned"


def stored_checks(checks: Sequence[CheckResult]) -> list[dict[str, Any]]:
    """Check results as a report stores them (JSON objects); ``ranges`` only where there are
    some, as lists, so results stored before ranges existed compare equal."""
    stored = []
    for check in checks:
        row = asdict(check)
        ranges = row.pop("ranges")
        if ranges:
            row["ranges"] = [[start, end] for start, end in ranges]
        stored.append(row)
    return stored


class ReportRow(TypedDict):
    """A new quality report, as the repository inserts it."""

    asset_id: uuid.UUID
    dataset_id: uuid.UUID
    media_type: str
    status: Status
    metrics: dict[str, float]
    structural: list[dict[str, Any]]
    reasons: list[dict[str, Any]]
    flags: list[dict[str, Any]]
    pixel_sha256: str | None
    phash: int | None  # unsigned 64-bit; the repository stores it as bigint
    crop_hashes: tuple[int, ...] | None  # with the phash only
    duplicate_of: uuid.UUID | None
    duplicate_code: str | None
    duplicate_distance: int | None
    duplicate_overlap: dict[str, Any] | None  # a duplicate video's SharedFootage
    arrival: int
    policy_version: int
    ingested: NotRequired[dict[str, Any]]  # the asset.ingested payload (where the file is)


def report_row(
    asset_id: uuid.UUID,
    dataset_id: uuid.UUID,
    media_type: str,
    findings: Findings,
    arrival: int,
    duplicate: Duplicate | None,
    judged: Verdict,
    policy_version: int,
) -> ReportRow:
    """The report of a freshly judged asset."""
    hashed = findings.phash is not None
    return ReportRow(
        asset_id=asset_id,
        dataset_id=dataset_id,
        media_type=media_type,
        status=status(judged),
        metrics=findings.metrics,
        structural=stored_checks(findings.structural),
        reasons=stored_checks(judged.reasons),
        flags=stored_checks(judged.flags),
        pixel_sha256=findings.pixels,
        phash=findings.phash,
        crop_hashes=findings.crops if hashed else None,
        duplicate_of=uuid.UUID(duplicate.of_asset) if duplicate else None,
        duplicate_code=duplicate.code if duplicate else None,
        duplicate_distance=duplicate.distance if duplicate else None,
        duplicate_overlap=asdict(duplicate.overlap) if duplicate and duplicate.overlap else None,
        arrival=arrival,
        policy_version=policy_version,
    )


def verdict_event(
    asset_id: uuid.UUID,
    dataset_id: uuid.UUID,
    dataset_slug: str,
    media_type: str,
    metrics: Mapping[str, float],
    judged: Verdict,
    policy_version: int,
    duplicate: Duplicate | None = None,
) -> AssetCleanedV1 | AssetRejectedV1:
    """The asset.cleaned or asset.rejected payload that announces a verdict; a duplicate
    video's shared footage goes with it when the verdict names it."""
    common: dict[str, Any] = {
        "asset_id": asset_id,
        "dataset_id": dataset_id,
        "dataset_slug": dataset_slug,
        "media_type": media_type,
        "metrics": metrics,
        "flags": [_reason(c) for c in judged.flags],
        "policy_version": policy_version,
    }
    named = {c.code for c in (*judged.reasons, *judged.flags)}
    if duplicate is not None and duplicate.overlap is not None and duplicate.code in named:
        footage = duplicate.overlap
        common["video_duplicate"] = VideoOverlap(
            duplicate_of=uuid.UUID(duplicate.of_asset),
            start_seconds=footage.start,
            end_seconds=footage.end,
            original_start_seconds=footage.original_start,
            original_end_seconds=footage.original_end,
        )
    if judged.rejected:
        return AssetRejectedV1(**common, reasons=[_reason(c) for c in judged.reasons])
    return AssetCleanedV1(**common)


def _reason(check: CheckResult) -> QualityReason:
    return QualityReason(
        code=check.code, message=check.message, value=check.value, threshold=check.threshold
    )


class StoredReport(Protocol):
    """What re-judging reads of a stored report."""

    @property
    def status(self) -> str: ...
    @property
    def metrics(self) -> dict[str, float]: ...
    @property
    def structural(self) -> list[dict[str, Any]]: ...
    @property
    def reasons(self) -> list[dict[str, Any]]: ...
    @property
    def flags(self) -> list[dict[str, Any]]: ...
    @property
    def duplicate_of(self) -> uuid.UUID | None: ...
    @property
    def duplicate_code(self) -> str | None: ...
    @property
    def duplicate_distance(self) -> int | None: ...
    @property
    def duplicate_overlap(self) -> dict[str, Any] | None: ...


def changed_verdict(report: StoredReport, rules: PolicyRules) -> Verdict | None:
    """The verdict a stored report gets under ``rules``, if it differs from the stored one
    (status, reasons or flags); None when nothing changes."""
    judged = judge(
        report.metrics,
        [
            CheckResult(
                c["code"],
                c["passed"],
                c["value"],
                c["threshold"],
                c["message"],
                tuple((start, end) for start, end in c.get("ranges", ())),
            )
            for c in report.structural
        ],
        stored_duplicate(report),
        rules,
    )
    before = (report.status, report.reasons, report.flags)
    after = (status(judged), stored_checks(judged.reasons), stored_checks(judged.flags))
    return judged if before != after else None


def stored_duplicate(report: StoredReport) -> Duplicate | None:
    """The duplicate finding a stored report keeps."""
    if report.duplicate_of is None or report.duplicate_code is None:
        return None
    if report.duplicate_code == "video_duplicate" and report.duplicate_overlap is not None:
        footage = SharedFootage(**report.duplicate_overlap)
        return Duplicate("video_duplicate", str(report.duplicate_of), 0, overlap=footage)
    exact = report.duplicate_code == "exact_duplicate"
    code: Literal["exact_duplicate", "near_duplicate"] = (
        "exact_duplicate" if exact else "near_duplicate"
    )
    return Duplicate(code, str(report.duplicate_of), report.duplicate_distance or 0)
