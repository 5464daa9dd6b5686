"""Webhook signatures, both directions: ``Conveyor-Signature: t=<unix>,v1=<hex>``.

The signed message is ``f"{t}.".encode() + body`` and v1 is its HMAC-SHA256 under the vendor's
secret. The timestamp is signed too, so a captured request cannot be replayed outside the
tolerance window; several ``v1=`` values may be given so a sender can sign with an old and a new
secret while a rotation is under way. Pure functions: no clock, no I/O.
"""

import enum
import hashlib
import hmac

SIGNATURE_HEADER = "Conveyor-Signature"
DELIVERY_HEADER = "Conveyor-Delivery"

# A header longer than this is not a signature anyone sent in good faith; refusing it early keeps
# a hostile header from costing many HMAC computations.
MAX_HEADER_LENGTH = 1024
MAX_SIGNATURES = 4


class SignatureCheck(enum.StrEnum):
    """The outcome of checking one request's signature header."""

    ok = "ok"
    missing = "missing"
    malformed = "malformed"
    mismatch = "mismatch"
    expired = "expired"


def digest(secret: str, body: bytes, timestamp: int) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>." + body`` under ``secret``."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``Conveyor-Signature`` header value for ``body`` sent at ``timestamp`` (unix seconds)."""
    return f"t={timestamp},v1={digest(secret, body, timestamp)}"


def parse(header: str) -> tuple[int, list[str]] | None:
    """The timestamp and the v1 signatures of a header, or None when it is not well formed.

    Unknown schemes (``v0=``, a future ``v2=``) are ignored so senders can add them; exactly one
    ``t=`` and at least one ``v1=`` are required.
    """
    if len(header) > MAX_HEADER_LENGTH:
        return None
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or not value:
            return None
        if key == "t":
            if timestamp is not None or not value.isascii() or not value.isdigit():
                return None
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value.lower())
    if timestamp is None or not signatures or len(signatures) > MAX_SIGNATURES:
        return None
    return timestamp, signatures


def verify(
    secret: str, header: str | None, body: bytes, *, now: float, tolerance: int
) -> SignatureCheck:
    """Check ``header`` against ``body`` signed with ``secret``, within ``tolerance`` s of ``now``.

    The signature is compared before the timestamp window: an attacker learns nothing from a
    forged request's age, and an expired answer means a genuine but stale (or replayed) request.
    """
    if header is None or not header.strip():
        return SignatureCheck.missing
    parsed = parse(header)
    if parsed is None:
        return SignatureCheck.malformed
    timestamp, signatures = parsed
    expected = digest(secret, body, timestamp)
    # Compare every candidate (no early exit) so timing does not say which one matched.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected.encode(), candidate.encode("ascii", "replace"))
    if not matched:
        return SignatureCheck.mismatch
    if abs(now - timestamp) > tolerance:
        return SignatureCheck.expired
    return SignatureCheck.ok
