"""The audit hash chain: canonical bytes, hashes, and verification that names the first break."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from services.audit.domain import (
    GENESIS_HASH,
    Break,
    ChainedRecord,
    RecordContent,
    canonical_json,
    chain_hash,
    content_of,
    extend_chain,
    link,
    trace_id_of,
    verify_chain,
)
from shared.events import Envelope

T0 = datetime(2025, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
N = 10


def build_chain(
    n: int = N, prev_hash: str = GENESIS_HASH, first_seq: int = 1
) -> list[ChainedRecord]:
    """``n`` correctly chained records, as the audit service appends them."""
    records = []
    for seq in range(first_seq, first_seq + n):
        content = RecordContent(
            seq=seq,
            event_id=f"evt-{seq}",
            type="conveyor.asset.ingested.v1",
            subject=f"asset-{seq % 3}",
            actor="alice" if seq % 2 else None,
            service="/conveyor/ingest",
            time=T0 + timedelta(seconds=seq),
            trace_id=f"{seq:032x}",
            payload={"n": seq, "tags": ["a", "b"], "name": f"caf\u00e9-{seq}"},
        )
        records.append(link(content, prev_hash))
        prev_hash = records[-1].hash
    return records


def rehash(record: ChainedRecord) -> ChainedRecord:
    """The record with its hash recomputed over its current content (a careful forger)."""
    return dataclasses.replace(record, hash=chain_hash(record.prev_hash, canonical_json(record)))


# ---- canonical_json and chain_hash ------------------------------------------------------------


def canonical(**overrides: Any) -> bytes:
    fields: dict[str, Any] = {
        "seq": 1,
        "event_id": "e1",
        "type": "t.v1",
        "subject": None,
        "actor": "alice",
        "service": "/svc",
        "time": T0,
        "trace_id": None,
        "payload": {"b": 1, "a": [1, 2]},
    }
    fields.update(overrides)
    return canonical_json(RecordContent(**fields))


def test_canonical_json_is_sorted_compact_utf8_with_utc_microsecond_time() -> None:
    assert canonical() == (
        b'{"actor":"alice","event_id":"e1","payload":{"a":[1,2],"b":1},"seq":1,'
        b'"service":"/svc","subject":null,"time":"2025-03-04T05:06:07.890123+00:00",'
        b'"trace_id":null,"type":"t.v1"}'
    )


def test_canonical_json_does_not_depend_on_payload_key_order() -> None:
    one = canonical(payload={"a": 1, "b": {"y": 2, "x": [3, {"q": 1, "p": 2}]}})
    other = canonical(payload={"b": {"x": [3, {"p": 2, "q": 1}], "y": 2}, "a": 1})
    assert one == other


def test_canonical_json_keeps_list_order_significant() -> None:
    assert canonical(payload={"a": [1, 2]}) != canonical(payload={"a": [2, 1]})


def test_canonical_json_writes_unicode_as_utf8_the_same_every_time() -> None:
    payload = {"name": "caf\u00e9 \u732b \U0001f600"}
    first = canonical(payload=payload)
    assert first == canonical(payload=dict(payload))
    assert '"name":"caf\u00e9 \u732b \U0001f600"'.encode() in first
    assert b"\\u" not in first


def test_canonical_json_encodes_the_same_instant_identically_in_any_time_zone() -> None:
    plus_two = T0.astimezone(timezone(timedelta(hours=2)))
    assert canonical(time=plus_two) == canonical(time=T0)
    assert b'"time":"2025-03-04T05:06:07.890123+00:00"' in canonical(time=plus_two)


def test_canonical_json_always_writes_six_fraction_digits() -> None:
    whole_second = T0.replace(microsecond=0)
    assert b'"time":"2025-03-04T05:06:07.000000+00:00"' in canonical(time=whole_second)


def test_chain_hash_is_sha256_of_previous_hash_then_canonical_bytes() -> None:
    body = canonical()
    assert chain_hash(GENESIS_HASH, body) == hashlib.sha256(b"0" * 64 + body).hexdigest()
    assert chain_hash("f" * 64, body) != chain_hash(GENESIS_HASH, body)
    assert GENESIS_HASH == "0" * 64


# Bytes and hashes computed by the code that built the chains of existing databases, before
# the hashed fields were declared in one place. If these change, old chains stop verifying.
PINNED_EVENT = Envelope(
    id="3f1c2a9e-8b7d-4c6e-9a05-1d2e3f4a5b6c",
    source="/conveyor/ingest",
    type="conveyor.asset.ingested.v1",
    time=datetime(2025, 3, 4, 7, 6, 7, 890123, tzinfo=timezone(timedelta(hours=2))),
    subject="asset-7",
    actor="alice",
    data={
        "sha256": "ab" * 32,
        "size": 1024,
        "name": "caf\u00e9 \u732b.jpg",
        "tags": ["b", "a"],
        "meta": {"w": 640, "h": 480, "ratio": 1.5, "ok": True, "none": None},
    },
    traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
)
PINNED_BYTES = (
    b'{"actor":"alice","event_id":"3f1c2a9e-8b7d-4c6e-9a05-1d2e3f4a5b6c","payload":{"meta":'
    b'{"h":480,"none":null,"ok":true,"ratio":1.5,"w":640},"name":"caf\xc3\xa9 \xe7\x8c\xab.jpg",'
    b'"sha256":"abababababababababababababababababababababababababababababababab","size":1024,'
    b'"tags":["b","a"]},"seq":42,"service":"/conveyor/ingest","subject":"asset-7",'
    b'"time":"2025-03-04T05:06:07.890123+00:00","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736",'
    b'"type":"conveyor.asset.ingested.v1"}'
)


def test_an_events_canonical_bytes_and_hash_are_those_existing_chains_hold() -> None:
    content = content_of(PINNED_EVENT, 42)
    assert canonical_json(content) == PINNED_BYTES
    assert (
        link(content, GENESIS_HASH).hash
        == "82c3f7672d9359bdf79a6cc915f45a36b89b9d777d3e43081788a347e6ab3ffb"
    )
    assert (
        link(content, "f" * 64).hash
        == "6b8ecd86ec0d053a09fd539dd3c27528d6c2110678955364a2688a5f1cae8664"
    )


def test_a_record_with_empty_fields_hashes_as_existing_chains_hold() -> None:
    assert (
        chain_hash(GENESIS_HASH, canonical())
        == "9dc1d67066a291b28395c8e6ce8674f422e7b0399fba1cea39532512bd201b77"
    )


def test_a_records_chain_links_are_not_part_of_its_canonical_bytes() -> None:
    content = content_of(PINNED_EVENT, 42)
    assert canonical_json(link(content, "a" * 64)) == canonical_json(content) == PINNED_BYTES


def event(event_id: str) -> Envelope:
    return PINNED_EVENT.model_copy(update={"id": event_id})


# ---- extend_chain -----------------------------------------------------------------------------


def test_extend_chain_numbers_and_links_new_events_after_the_head() -> None:
    records = extend_chain(7, "c" * 64, [event("a"), event("b")], known=set())
    assert [(r.seq, r.event_id) for r in records] == [(8, "a"), (9, "b")]
    assert records[0].prev_hash == "c" * 64
    assert verify_chain(records, "c" * 64, 8) == (2, None, records[-1].hash, 10)


def test_extend_chain_files_each_event_id_once() -> None:
    known = {"a"}
    records = extend_chain(0, GENESIS_HASH, [event("a"), event("b"), event("b")], known)
    assert [(r.seq, r.event_id) for r in records] == [(1, "b")]
    assert known == {"a"}


# ---- verify_chain -----------------------------------------------------------------------------


def test_verify_chain_accepts_an_intact_chain() -> None:
    records = build_chain()
    assert verify_chain(records) == (N, None, records[-1].hash, N + 1)


def test_verify_chain_of_no_records_checks_nothing_and_keeps_its_position() -> None:
    assert verify_chain([]) == (0, None, GENESIS_HASH, 1)
    assert verify_chain([], prev_hash="a" * 64, next_seq=42) == (0, None, "a" * 64, 42)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("payload", {"n": 999, "tags": ["a", "b"], "name": "caf\u00e9-4"}),
        ("actor", "mallory"),
        ("time", T0 + timedelta(seconds=4, microseconds=1)),
        ("subject", "asset-other"),
        ("event_id", "evt-forged"),
        ("type", "conveyor.dataset.created.v1"),
        ("trace_id", None),
        ("service", "/conveyor/evil"),
    ],
)
@pytest.mark.parametrize("k", [1, 4, N])
def test_verify_chain_reports_an_altered_record_by_its_seq(k: int, field: str, value: Any) -> None:
    records = build_chain()
    records[k - 1] = dataclasses.replace(records[k - 1], **{field: value})
    checked, brk, last_hash, next_seq = verify_chain(records)
    assert checked == k - 1
    assert brk is not None
    assert brk.seq == k
    assert brk.event_id == records[k - 1].event_id
    assert "altered" in brk.reason
    assert last_hash == (records[k - 2].hash if k > 1 else GENESIS_HASH)
    assert next_seq == 0


def test_verify_chain_catches_an_altered_record_whose_own_hash_was_recomputed() -> None:
    records = build_chain()
    records[4] = rehash(dataclasses.replace(records[4], actor="mallory"))
    checked, brk, _, _ = verify_chain(records)
    assert checked == 5
    assert brk == Break(6, "evt-6", "prev_hash does not match the previous record")


@pytest.mark.parametrize("k", [1, 5, N - 1])
def test_verify_chain_reports_a_removed_record_as_missing(k: int) -> None:
    records = build_chain()
    del records[k - 1]
    checked, brk, last_hash, _ = verify_chain(records)
    assert checked == k - 1
    assert brk == Break(k, None, f"record {k} is missing")
    assert last_hash == (records[k - 2].hash if k > 1 else GENESIS_HASH)


def test_verify_chain_detects_two_swapped_records() -> None:
    records = build_chain()
    records[3], records[4] = records[4], records[3]
    checked, brk, _, _ = verify_chain(records)
    assert checked == 3
    assert brk == Break(4, None, "record 4 is missing")


def test_verify_chain_detects_swapped_records_even_when_renumbered() -> None:
    records = build_chain()
    fourth, fifth = records[3], records[4]
    records[3] = dataclasses.replace(fifth, seq=4, prev_hash=fourth.prev_hash)
    records[4] = dataclasses.replace(fourth, seq=5, prev_hash=fifth.prev_hash)
    checked, brk, _, _ = verify_chain(records)
    assert checked == 3
    assert brk == Break(4, "evt-5", "content does not match its hash (altered)")


def test_verify_chain_detects_a_replaced_prev_hash() -> None:
    records = build_chain()
    records[6] = dataclasses.replace(records[6], prev_hash="f" * 64)
    checked, brk, last_hash, _ = verify_chain(records)
    assert checked == 6
    assert brk == Break(7, "evt-7", "prev_hash does not match the previous record")
    assert last_hash == records[5].hash


def test_verify_chain_refuses_a_chain_that_does_not_start_at_the_given_hash() -> None:
    records = build_chain(prev_hash="e" * 64)
    _, brk, _, _ = verify_chain(records)
    assert brk == Break(1, "evt-1", "prev_hash does not match the previous record")


@pytest.mark.parametrize("batch_size", [1, 3, 4, N - 1, N])
def test_verify_chain_in_batches_gives_the_same_result_as_one_call(batch_size: int) -> None:
    records = build_chain()
    prev_hash, next_seq, total = GENESIS_HASH, 1, 0
    for start in range(0, len(records), batch_size):
        checked, brk, prev_hash, next_seq = verify_chain(
            records[start : start + batch_size], prev_hash, next_seq
        )
        assert brk is None
        total += checked
    assert (total, None, prev_hash, next_seq) == verify_chain(records)
    assert (total, prev_hash, next_seq) == (N, records[-1].hash, N + 1)


@pytest.mark.parametrize("batch_size", [1, 3, 4, N])
def test_verify_chain_in_batches_finds_the_same_first_break(batch_size: int) -> None:
    records = build_chain()
    records[6] = dataclasses.replace(records[6], payload={"forged": True})
    _, expected_break, _, _ = verify_chain(records)
    prev_hash, next_seq, total, found = GENESIS_HASH, 1, 0, None
    for start in range(0, len(records), batch_size):
        checked, found, prev_hash, next_seq = verify_chain(
            records[start : start + batch_size], prev_hash, next_seq
        )
        total += checked
        if found:
            break
    assert found == expected_break == Break(7, "evt-7", "content does not match its hash (altered)")
    assert total == 6
    assert prev_hash == records[5].hash


def test_verify_chain_continues_a_chain_from_a_later_position() -> None:
    head = build_chain(5)
    tail = build_chain(5, prev_hash=head[-1].hash, first_seq=6)
    assert verify_chain(tail, head[-1].hash, 6) == (5, None, tail[-1].hash, 11)
    assert verify_chain(head + tail) == (10, None, tail[-1].hash, 11)
    _, brk, _, _ = verify_chain(tail, head[-1].hash, 5)
    assert brk == Break(5, None, "record 5 is missing")


# ---- trace_id_of ------------------------------------------------------------------------------


def test_trace_id_of_returns_the_trace_id_of_a_w3c_traceparent() -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert trace_id_of(traceparent) == "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        "not-a-trace-parent-at-all",
        "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",  # 30-char trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  # no flags
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
    ],
)
def test_trace_id_of_rejects_values_that_are_not_traceparents(value: str | None) -> None:
    assert trace_id_of(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "00-" + "z" * 32 + "-00f067aa0ba902b7-01",
        "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
    ],
    ids=["non-hex", "all-zero"],
)
def test_trace_id_of_rejects_invalid_trace_ids_of_the_right_length(value: str) -> None:
    assert trace_id_of(value) is None
