"""The hash chain, as pure functions.

Each record's hash is SHA-256 over the previous record's hash followed by the record's
canonical JSON (sorted keys, no insignificant whitespace, UTF-8). Changing, removing or
reordering any record breaks every hash after it, and :func:`verify_chain` names the
first record that no longer fits.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")


@dataclass(frozen=True)
class ChainedRecord:
    """The hashed content of one audit record plus its chain links."""

    seq: int
    event_id: str
    type: str
    subject: str | None
    actor: str | None
    service: str
    time: datetime
    trace_id: str | None
    payload: dict[str, Any]
    prev_hash: str
    hash: str


def canonical_json(
    *,
    seq: int,
    event_id: str,
    type: str,
    subject: str | None,
    actor: str | None,
    service: str,
    time: datetime,
    trace_id: str | None,
    payload: dict[str, Any],
) -> bytes:
    """The bytes a record's hash covers."""
    document = {
        "seq": seq,
        "event_id": event_id,
        "type": type,
        "subject": subject,
        "actor": actor,
        "service": service,
        "time": time.astimezone(UTC).isoformat(timespec="microseconds"),
        "trace_id": trace_id,
        "payload": payload,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, canonical: bytes) -> str:
    """Hash of a record given its predecessor's hash."""
    return hashlib.sha256(prev_hash.encode() + canonical).hexdigest()


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id in a W3C traceparent (``00-<trace id>-<span id>-<flags>``)."""
    if not traceparent:
        return None
    match = _TRACEPARENT.fullmatch(traceparent)
    if match is None or match.group(1) == "0" * 32:
        return None
    return match.group(1)


@dataclass(frozen=True)
class Break:
    """Where and why the chain stops being valid."""

    seq: int
    event_id: str | None
    reason: str


def verify_chain(
    records: Iterable[ChainedRecord], prev_hash: str = GENESIS_HASH, next_seq: int = 1
) -> tuple[int, Break | None, str, int]:
    """Check records in seq order, starting after (``prev_hash``, ``next_seq`` - 1).

    Returns (records checked, first break or None, last hash, next expected seq) so a
    long log can be verified in batches.
    """
    checked = 0
    for record in records:
        if record.seq != next_seq:
            return checked, Break(next_seq, None, f"record {next_seq} is missing"), prev_hash, 0
        if record.prev_hash != prev_hash:
            return (
                checked,
                Break(record.seq, record.event_id, "prev_hash does not match the previous record"),
                prev_hash,
                0,
            )
        expected = chain_hash(
            prev_hash,
            canonical_json(
                seq=record.seq,
                event_id=record.event_id,
                type=record.type,
                subject=record.subject,
                actor=record.actor,
                service=record.service,
                time=record.time,
                trace_id=record.trace_id,
                payload=record.payload,
            ),
        )
        if expected != record.hash:
            return (
                checked,
                Break(record.seq, record.event_id, "content does not match its hash (altered)"),
                prev_hash,
                0,
            )
        checked += 1
        prev_hash = record.hash
        next_seq += 1
    return checked, None, prev_hash, next_seq
