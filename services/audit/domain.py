"""The hash chain, as pure functions.

Each record's hash is SHA-256 over the previous record's hash followed by the record's
canonical JSON (sorted keys, no insignificant whitespace, UTF-8). Changing, removing or
reordering any record breaks every hash after it, and :func:`verify_chain` names the
first record that no longer fits.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.events import Envelope

GENESIS_HASH = "0" * 64
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")


@dataclass(frozen=True)
class RecordContent:
    """What a record's hash covers: its fields are the hashed fields, and only these."""

    seq: int
    event_id: str
    type: str
    subject: str | None
    actor: str | None
    service: str
    time: datetime
    trace_id: str | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class ChainedRecord(RecordContent):
    """A record's hashed content plus its chain links."""

    prev_hash: str
    hash: str

    @classmethod
    def of(cls, row: object) -> ChainedRecord:
        """The chained record of anything with its attributes (e.g. a stored row)."""
        return cls(**{f.name: getattr(row, f.name) for f in dataclasses.fields(cls)})


def canonical_json(record: RecordContent) -> bytes:
    """The bytes a record's hash covers (a :class:`ChainedRecord`'s links are not among them).

    Existing chains were hashed over exactly these bytes: keep them identical.
    """
    document = {
        **_hashed(record),
        "time": record.time.astimezone(UTC).isoformat(timespec="microseconds"),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _hashed(record: RecordContent) -> dict[str, Any]:
    """The hashed fields of ``record`` by name, as :class:`RecordContent` declares them."""
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(RecordContent)}


def chain_hash(prev_hash: str, canonical: bytes) -> str:
    """Hash of a record given its predecessor's hash."""
    return hashlib.sha256(prev_hash.encode() + canonical).hexdigest()


def link(content: RecordContent, prev_hash: str) -> ChainedRecord:
    """``content`` as the record that follows the one whose hash is ``prev_hash``."""
    return ChainedRecord(
        **_hashed(content),
        prev_hash=prev_hash,
        hash=chain_hash(prev_hash, canonical_json(content)),
    )


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id in a W3C traceparent (``00-<trace id>-<span id>-<flags>``)."""
    if not traceparent:
        return None
    match = _TRACEPARENT.fullmatch(traceparent)
    if match is None or match.group(1) == "0" * 32:
        return None
    return match.group(1)


def content_of(envelope: Envelope, seq: int) -> RecordContent:
    """What the log records of an event it files at position ``seq``."""
    return RecordContent(
        seq=seq,
        event_id=envelope.id,
        type=envelope.type,
        subject=envelope.subject,
        actor=envelope.actor,
        service=envelope.source,
        time=envelope.time,
        trace_id=trace_id_of(envelope.traceparent),
        payload=envelope.data,
    )


def extend_chain(
    head_seq: int, head_hash: str, envelopes: Sequence[Envelope], known: set[str]
) -> list[ChainedRecord]:
    """The records that follow the head for ``envelopes``, in order.

    Events in ``known`` (already in the log) and repeats within ``envelopes`` (a redelivery in
    the same poll) get no record: each event id is filed once.
    """
    seen = set(known)
    records = []
    for envelope in envelopes:
        if envelope.id in seen:
            continue
        seen.add(envelope.id)
        head_seq += 1
        record = link(content_of(envelope, head_seq), head_hash)
        records.append(record)
        head_hash = record.hash
    return records


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
        if chain_hash(prev_hash, canonical_json(record)) != record.hash:
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
