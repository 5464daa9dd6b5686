"""Webhook signatures: the header both directions use, its rotation rule and its time window."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from services.labeling_dispatch.domain.signatures import (
    MAX_HEADER_LENGTH,
    SignatureCheck,
    parse,
    sign,
    verify,
)

SECRET = "whsec_test_secret"
BODY = b'{"annotations": [{"task_id": "t-1", "shapes": []}]}'
NOW = 1_750_000_000
TOLERANCE = 300


def check(header: str | None, body: bytes = BODY, secret: str = SECRET, now: float = NOW) -> str:
    return verify(secret, header, body, now=now, tolerance=TOLERANCE)


def test_sign_produces_timestamp_and_hmac_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, BODY, NOW) == f"t={NOW},v1={expected}"


def test_a_fresh_signature_verifies() -> None:
    assert check(sign(SECRET, BODY, NOW)) is SignatureCheck.ok


def test_a_tampered_body_is_a_mismatch() -> None:
    header = sign(SECRET, BODY, NOW)
    assert check(header, body=BODY.replace(b"t-1", b"t-2")) is SignatureCheck.mismatch


def test_another_secret_is_a_mismatch() -> None:
    assert check(sign("another vendor's secret", BODY, NOW)) is SignatureCheck.mismatch


def test_a_changed_timestamp_is_a_mismatch_because_the_timestamp_is_signed() -> None:
    header = sign(SECRET, BODY, NOW).replace(f"t={NOW}", f"t={NOW + 1}")
    assert check(header) is SignatureCheck.mismatch


def test_a_ten_minute_old_signature_has_expired() -> None:
    assert check(sign(SECRET, BODY, NOW - 600)) is SignatureCheck.expired


def test_a_signature_from_ten_minutes_in_the_future_has_expired() -> None:
    assert check(sign(SECRET, BODY, NOW + 600)) is SignatureCheck.expired


def test_the_window_edges_are_inclusive() -> None:
    assert check(sign(SECRET, BODY, NOW - TOLERANCE)) is SignatureCheck.ok
    assert check(sign(SECRET, BODY, NOW + TOLERANCE)) is SignatureCheck.ok
    assert check(sign(SECRET, BODY, NOW - TOLERANCE - 1)) is SignatureCheck.expired


def test_an_old_forged_signature_is_a_mismatch_not_expired() -> None:
    assert check(sign("forger", BODY, NOW - 600)) is SignatureCheck.mismatch


@pytest.mark.parametrize("header", [None, "", "   "])
def test_a_missing_header_is_missing(header: str | None) -> None:
    assert check(header) is SignatureCheck.missing


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        f"t={NOW}",
        "v1=abcdef",
        f"t=,v1={'0' * 64}",
        f"t=abc,v1={'0' * 64}",
        f"t=-5,v1={'0' * 64}",
        f"t={NOW},t={NOW},v1={'0' * 64}",
        f"t={NOW},v1=",
        f"t={NOW};v1={'0' * 64}",
        f"t={NOW},v1={'0' * 64}," + ",".join(f"v1={i:064x}" for i in range(10)),
        f"t={NOW},v1=" + "a" * MAX_HEADER_LENGTH,
        f"t=١٢٣,v1={'0' * 64}",
    ],
)
def test_malformed_headers_are_malformed(header: str) -> None:
    assert check(header) is SignatureCheck.malformed


def test_any_of_several_v1_values_may_match_during_a_secret_rotation() -> None:
    new = sign(SECRET, BODY, NOW).split("v1=")[1]
    old = sign("the old secret", BODY, NOW).split("v1=")[1]
    assert check(f"t={NOW},v1={old},v1={new}") is SignatureCheck.ok
    assert check(f"t={NOW},v1={new},v1={old}") is SignatureCheck.ok
    assert check(f"t={NOW},v1={old}") is SignatureCheck.mismatch


def test_unknown_schemes_are_ignored_and_spaces_tolerated() -> None:
    value = sign(SECRET, BODY, NOW).split("v1=")[1]
    assert check(f"t={NOW}, v0=dead, v1={value.upper()}") is SignatureCheck.ok


def test_non_ascii_signature_values_are_a_mismatch_not_an_error() -> None:
    assert check(f"t={NOW},v1=é{'0' * 63}") is SignatureCheck.mismatch


def test_parse_returns_timestamp_and_signatures() -> None:
    assert parse(f"t={NOW},v1=ab,v1=cd") == (NOW, ["ab", "cd"])
    assert parse("t=1") is None
