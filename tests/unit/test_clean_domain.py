"""Clean's decisions on one asset (services/clean/domain.py), without the stack."""

from __future__ import annotations

import uuid
from dataclasses import replace
from types import SimpleNamespace

from services.clean import domain
from services.clean.checks import CROP_REGIONS, NEAR_DUPLICATE_RADIUS, CheckResult, ImageReport
from services.clean.domain import Findings
from services.clean.near_index import DatasetHashes
from services.clean.policy import Duplicate, PolicyRules
from shared.events import AssetCleanedV1, AssetRejectedV1

RULES = PolicyRules()
FINE = {"structure_fraction": 0.5, "mean_luminance": 120.0}  # passes every default threshold
HASH = 0x9F3A_55C1_0E7D_B268
TRUNCATED = CheckResult("truncated", False, None, None, "the JPEG ends early")


def ids(count: int) -> list[uuid.UUID]:
    return [uuid.UUID(int=i + 1) for i in range(count)]


def hashed(phash: int, pixels: str = "p") -> Findings:
    return Findings([], dict(FINE), pixels, phash, (phash,) * len(CROP_REGIONS))


def image(metrics: dict[str, float], checks: tuple[CheckResult, ...] = ()) -> ImageReport:
    return ImageReport("jpeg", checks, metrics, 640, 480, "digest", HASH, (HASH,) * 18)


# ---- findings ------------------------------------------------------------------------------


def test_image_findings_keep_structural_defects_and_leave_thresholds_to_the_verdict() -> None:
    dark = CheckResult("dark", False, 10.0, 40.0, "image is too dark")
    findings = domain.image_findings(image(FINE, (TRUNCATED, dark)), RULES)
    assert findings.structural == [TRUNCATED]
    assert findings.pixels == "digest" and findings.phash == HASH


def test_a_near_flat_image_is_not_compared_for_near_duplicates() -> None:
    flat = {**FINE, "structure_fraction": 0.001}
    findings = domain.image_findings(image(flat), RULES)
    assert findings.pixels == "digest"  # exact duplicates still count
    assert findings.phash is None and findings.crops == ()


def test_an_image_too_large_to_read_is_found_unread() -> None:
    findings = domain.unread_findings(300, 200)
    assert [c.code for c in findings.structural] == ["file_too_large"]
    assert domain.verdict(findings, None, RULES).rejected


# ---- the duplicate decision ------------------------------------------------------------------


def test_the_same_pixels_later_in_a_run_are_an_exact_duplicate_of_the_first() -> None:
    first, second = ids(2)
    originals: dict[str, uuid.UUID] = {}
    copy = DatasetHashes()
    assert domain.find_duplicate(first, 1, hashed(HASH), originals, copy, RULES) is None
    found = domain.find_duplicate(second, 2, hashed(HASH), originals, copy, RULES)
    assert found == Duplicate("exact_duplicate", str(first), 0)


def test_a_stored_original_wins_over_an_earlier_asset_of_the_run() -> None:
    stored, asset = ids(2)
    found = domain.find_duplicate(asset, 5, hashed(HASH), {"p": stored}, DatasetHashes(), RULES)
    assert found is not None and found.of_asset == str(stored)


def test_a_close_hash_is_a_near_duplicate_within_the_policy_radius_only() -> None:
    first, second, third = ids(3)
    copy = DatasetHashes()
    domain.find_duplicate(first, 1, hashed(HASH, "a"), {}, copy, RULES)
    close = HASH ^ 0b111  # three bits apart
    found = domain.find_duplicate(second, 2, hashed(close, "b"), {}, copy, RULES)
    assert found is not None
    assert (found.code, found.of_asset, found.distance) == ("near_duplicate", str(first), 3)
    strict = RULES.model_copy(update={"near_duplicate_radius": 2})
    assert domain.find_duplicate(third, 3, hashed(close, "c"), {}, DatasetHashes(), strict) is None


def test_every_hashed_asset_joins_the_copy_and_an_unhashed_one_does_not() -> None:
    first, second = ids(2)
    copy = DatasetHashes()
    unhashed = replace(hashed(HASH), phash=None, crops=())
    domain.find_duplicate(first, 1, unhashed, {}, copy, RULES)
    assert len(copy) == 0
    domain.find_duplicate(second, 2, hashed(HASH), {}, copy, RULES)
    assert len(copy) == 1 and copy.newest_arrival == 2


def test_an_exact_duplicate_is_not_looked_up_again_as_a_near_one() -> None:
    first, second = ids(2)
    copy = DatasetHashes()
    domain.find_duplicate(first, 1, hashed(HASH), {}, copy, RULES)
    found = domain.find_duplicate(second, 2, hashed(HASH), {"p": first}, copy, RULES)
    assert found is not None and found.code == "exact_duplicate" and found.via is None


# ---- verdicts, rows and events ---------------------------------------------------------------


def test_a_duplicate_rejects_under_the_default_policy_and_only_flags_when_told() -> None:
    duplicate = Duplicate("near_duplicate", str(uuid.uuid4()), 2)
    assert domain.verdict(hashed(HASH), duplicate, RULES).rejected
    flagging = PolicyRules(actions={"near_duplicate": "flag"})
    judged = domain.verdict(hashed(HASH), duplicate, flagging)
    assert not judged.rejected and [c.code for c in judged.flags] == ["near_duplicate"]
    assert not domain.verdict(hashed(HASH), None, RULES).rejected


def test_the_report_row_holds_findings_verdict_and_duplicate() -> None:
    asset, dataset, original = ids(3)
    findings = hashed(HASH)
    duplicate = Duplicate("exact_duplicate", str(original), 0)
    judged = domain.verdict(findings, duplicate, RULES)
    row = domain.report_row(asset, dataset, "image/jpeg", findings, 7, duplicate, judged, 3)
    assert row["status"] == "rejected"
    assert [r["code"] for r in row["reasons"]] == ["exact_duplicate"]
    assert row["duplicate_of"] == original and row["duplicate_code"] == "exact_duplicate"
    assert row["phash"] == HASH and row["crop_hashes"] == findings.crops
    assert (row["arrival"], row["policy_version"]) == (7, 3)
    unhashed = replace(findings, phash=None, crops=())
    bare = domain.report_row(asset, dataset, "image/jpeg", unhashed, 8, None, judged, 3)
    assert bare["phash"] is None and bare["crop_hashes"] is None and bare["duplicate_of"] is None


def test_the_verdict_event_is_cleaned_or_rejected_with_its_reasons() -> None:
    asset, dataset = ids(2)
    judged = domain.verdict(Findings([TRUNCATED], {}), None, RULES)
    rejected = domain.verdict_event(asset, dataset, "cars", "image/jpeg", {}, judged, 2)
    assert isinstance(rejected, AssetRejectedV1)
    assert [r.code for r in rejected.reasons] == ["truncated"] and rejected.policy_version == 2
    fine = domain.verdict(hashed(HASH), None, RULES)
    cleaned = domain.verdict_event(asset, dataset, "cars", "image/jpeg", FINE, fine, 0)
    assert isinstance(cleaned, AssetCleanedV1) and cleaned.dataset_slug == "cars"


# ---- re-judging stored reports ---------------------------------------------------------------


def stored(findings: Findings, duplicate: Duplicate | None, rules: PolicyRules) -> SimpleNamespace:
    judged = domain.verdict(findings, duplicate, rules)
    return SimpleNamespace(
        status=domain.status(judged),
        metrics=findings.metrics,
        structural=domain.stored_checks(findings.structural),
        reasons=domain.stored_checks(judged.reasons),
        flags=domain.stored_checks(judged.flags),
        duplicate_of=uuid.UUID(duplicate.of_asset) if duplicate else None,
        duplicate_code=duplicate.code if duplicate else None,
        duplicate_distance=duplicate.distance if duplicate else None,
    )


def test_the_same_policy_changes_no_stored_verdict() -> None:
    duplicate = Duplicate("near_duplicate", str(uuid.uuid4()), 4)
    for report in (
        stored(hashed(HASH), None, RULES),
        stored(hashed(HASH), duplicate, RULES),
        stored(Findings([TRUNCATED], {}), None, RULES),
    ):
        assert domain.changed_verdict(report, RULES) is None


def test_a_new_policy_changes_only_the_verdicts_it_affects() -> None:
    duplicate = Duplicate("near_duplicate", str(uuid.uuid4()), NEAR_DUPLICATE_RADIUS)
    copy = stored(hashed(HASH), duplicate, RULES)
    unrelated = stored(hashed(HASH ^ 1, "q"), None, RULES)
    narrower = PolicyRules(near_duplicate_radius=NEAR_DUPLICATE_RADIUS - 1)
    judged = domain.changed_verdict(copy, narrower)
    assert judged is not None and not judged.rejected  # no longer close enough to count
    assert domain.changed_verdict(unrelated, narrower) is None
    flagging = PolicyRules(actions={"truncated": "flag"})
    damaged = stored(Findings([TRUNCATED], {}), None, RULES)
    judged = domain.changed_verdict(damaged, flagging)
    assert judged is not None and [c.code for c in judged.flags] == ["truncated"]


def test_a_stored_duplicate_is_read_back_as_found() -> None:
    original = uuid.uuid4()
    report = stored(hashed(HASH), Duplicate("exact_duplicate", str(original), 0), RULES)
    assert domain.stored_duplicate(report) == Duplicate("exact_duplicate", str(original), 0)
    assert domain.stored_duplicate(stored(hashed(HASH), None, RULES)) is None
