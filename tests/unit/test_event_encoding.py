"""CloudEvents binary encoding on Kafka, the event registry, and the payload models."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError

from shared.events import (
    ALL_TOPICS,
    ALL_TOPICS_PATTERN,
    ASSET_INGESTED,
    EVENT_TYPES,
    OBJECT_CREATED,
    Envelope,
    ObjectCreatedV1,
    Payload,
    UnknownEventType,
)
from shared.kafka import MalformedEvent, decode, encode, encode_stored, is_transient

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
WHEN = datetime(2025, 6, 7, 8, 9, 10, 123456, tzinfo=timezone(timedelta(hours=2)))
DATASET_ID = uuid.UUID("6f1c1b52-8a45-4e0b-9a51-3d2c7b1e0f11")
ASSET_ID = uuid.UUID("0b7e3c1d-2f4a-4b6c-8d9e-1a2b3c4d5e6f")

# One valid payload per registered event type; the registry test below keeps this complete.
SAMPLES: dict[str, Payload] = {
    "conveyor.objectstore.object_created.v1": ObjectCreatedV1(
        bucket="conveyor-landing", key="cars/a.jpg", size_bytes=1127, etag="abc"
    ),
    "conveyor.dataset.created.v1": EVENT_TYPES["conveyor.dataset.created.v1"].payload(
        dataset_id=DATASET_ID, slug="cars", name="Cars", created_by="alice"
    ),
    "conveyor.dataset.version_created.v1": EVENT_TYPES[
        "conveyor.dataset.version_created.v1"
    ].payload(
        dataset_id=DATASET_ID,
        dataset_slug="cars",
        version=3,
        item_count=1200,
        shape_count=5400,
        manifest_hash="cd" * 32,
        created_by="mia",
    ),
    "conveyor.asset.ingested.v1": ASSET_INGESTED.payload(
        asset_id=ASSET_ID,
        dataset_id=DATASET_ID,
        dataset_slug="cars",
        sha256="ab" * 32,
        size_bytes=1127,
        media_type="image/jpeg",
        filename="caf\u00e9.jpg",
        source="upload",
        uploaded_by="alice",
        tags=["front", "night"],
        bucket="conveyor-raw",
        object_key="sha256/ab/ab/" + "ab" * 32,
    ),
    "conveyor.ingest.drop_rejected.v1": EVENT_TYPES["conveyor.ingest.drop_rejected.v1"].payload(
        bucket="conveyor-landing", key="x.jpg", reason="missing_dataset", message="no folder"
    ),
    "conveyor.asset.cleaned.v1": EVENT_TYPES["conveyor.asset.cleaned.v1"].payload(
        asset_id=uuid.UUID(int=3),
        dataset_id=uuid.UUID(int=4),
        dataset_slug="cars",
        media_type="image/jpeg",
        metrics={"edge_sharpness": 0.71},
        flags=[{"code": "odd_aspect_ratio", "message": "wide", "value": 5.1, "threshold": 4.0}],
        policy_version=0,
    ),
    "conveyor.asset.rejected.v1": EVENT_TYPES["conveyor.asset.rejected.v1"].payload(
        asset_id=uuid.UUID(int=5),
        dataset_id=uuid.UUID(int=4),
        dataset_slug="cars",
        media_type="image/jpeg",
        metrics={"edge_sharpness": 0.2},
        reasons=[{"code": "blurry", "message": "blurry", "value": 12.0, "threshold": 100.0}],
        policy_version=2,
    ),
    "conveyor.video.frame_sampled.v1": EVENT_TYPES["conveyor.video.frame_sampled.v1"].payload(
        video_asset_id=uuid.UUID(int=8),
        dataset_id=uuid.UUID(int=4),
        dataset_slug="cars",
        frame_index=25,
        frame_time_seconds=1.0,
        bucket="conveyor-derived",
        object_key="frames/00000000-0000-0000-0000-000000000008/000025.jpg",
        sha256="ab" * 32,
        size_bytes=2048,
    ),
    "conveyor.api_key.created.v1": EVENT_TYPES["conveyor.api_key.created.v1"].payload(
        key_id=uuid.UUID(int=7), name="alice", role="uploader", created_by="bootstrap-admin"
    ),
    "conveyor.api_key.scope_changed.v1": EVENT_TYPES["conveyor.api_key.scope_changed.v1"].payload(
        key_id=uuid.UUID(int=7), datasets=[uuid.UUID(int=3)], changed_by="bootstrap-admin"
    ),
    "conveyor.api_key.revoked.v1": EVENT_TYPES["conveyor.api_key.revoked.v1"].payload(
        key_id=uuid.UUID(int=7), revoked_by="bootstrap-admin"
    ),
    "conveyor.ontology.version_created.v1": EVENT_TYPES[
        "conveyor.ontology.version_created.v1"
    ].payload(
        ontology_id=uuid.UUID(int=11), name="vehicles", version=2, classes=["car"], created_by="a"
    ),
    "conveyor.vendor.created.v1": EVENT_TYPES["conveyor.vendor.created.v1"].payload(
        vendor_id=uuid.UUID(int=12), name="acme", kind="webhook", capacity=50, created_by="a"
    ),
    "conveyor.vendor.changed.v1": EVENT_TYPES["conveyor.vendor.changed.v1"].payload(
        vendor_id=uuid.UUID(int=12), change="disabled", changed_by="a"
    ),
    "conveyor.job.created.v1": EVENT_TYPES["conveyor.job.created.v1"].payload(
        job_id=uuid.UUID(int=13),
        name="cars",
        dataset_id=DATASET_ID,
        ontology_id=uuid.UUID(int=11),
        ontology_version=2,
        vendor_ids=[uuid.UUID(int=12)],
        overlap=2,
        gold_ratio=0.05,
        priority="uncertainty",
        lease_seconds=3600,
        created_by="a",
    ),
    "conveyor.job.state_changed.v1": EVENT_TYPES["conveyor.job.state_changed.v1"].payload(
        job_id=uuid.UUID(int=13), state="paused", previous_state="open", changed_by="a"
    ),
    "conveyor.task.created.v1": EVENT_TYPES["conveyor.task.created.v1"].payload(
        task_id=uuid.UUID(int=14),
        job_id=uuid.UUID(int=13),
        asset_id=ASSET_ID,
        dataset_id=DATASET_ID,
        replica=1,
        gold=False,
    ),
    "conveyor.task.dispatched.v1": EVENT_TYPES["conveyor.task.dispatched.v1"].payload(
        task_id=uuid.UUID(int=14),
        job_id=uuid.UUID(int=13),
        asset_id=ASSET_ID,
        vendor_id=uuid.UUID(int=12),
        delivery_id=uuid.UUID(int=15),
        attempt=1,
        lease_expires_at=WHEN,
    ),
    "conveyor.task.expired.v1": EVENT_TYPES["conveyor.task.expired.v1"].payload(
        task_id=uuid.UUID(int=14),
        job_id=uuid.UUID(int=13),
        asset_id=ASSET_ID,
        vendor_id=uuid.UUID(int=12),
        attempt=1,
        requeued=True,
    ),
    "conveyor.task.rework_sent.v1": EVENT_TYPES["conveyor.task.rework_sent.v1"].payload(
        task_id=uuid.UUID(int=14),
        job_id=uuid.UUID(int=13),
        asset_id=ASSET_ID,
        vendor_id=None,
        comment="box too loose",
        requested_by="reviewer",
    ),
    "conveyor.delivery.failed.v1": EVENT_TYPES["conveyor.delivery.failed.v1"].payload(
        delivery_id=uuid.UUID(int=15),
        vendor_id=uuid.UUID(int=12),
        job_id=uuid.UUID(int=13),
        task_ids=[uuid.UUID(int=14)],
        attempts=9,
        status_code=503,
        error="HTTP 503",
    ),
    "conveyor.annotation.submitted.v1": EVENT_TYPES["conveyor.annotation.submitted.v1"].payload(
        annotation_id=uuid.UUID(int=16),
        task_id=uuid.UUID(int=14),
        job_id=uuid.UUID(int=13),
        asset_id=ASSET_ID,
        dataset_id=DATASET_ID,
        vendor_id=uuid.UUID(int=12),
        annotator_id="worker-7",
        replica=0,
        gold=False,
        ontology_id=uuid.UUID(int=11),
        ontology_version=2,
        shapes=[
            {"class": "car", "type": "bbox", "bbox": {"x": 1, "y": 2, "width": 3, "height": 4}}
        ],
        vendor_submitted_at=WHEN,
        received_at=WHEN,
        lead_time_seconds=12.5,
    ),
    "conveyor.annotation.refused.v1": EVENT_TYPES["conveyor.annotation.refused.v1"].payload(
        vendor_id=uuid.UUID(int=12),
        task_id=None,
        delivery_id="d-1",
        reason="invalid_signature",
        status_code=401,
    ),
    "conveyor.annotation.withdrawn.v1": EVENT_TYPES["conveyor.annotation.withdrawn.v1"].payload(
        annotation_id=uuid.UUID(int=13),
        task_id=uuid.UUID(int=14),
        job_id=uuid.UUID(int=15),
        asset_id=ASSET_ID,
        vendor_id=uuid.UUID(int=12),
        annotator_id="label-studio:ann@example.com",
        version=2,
        vendor_ref="41",
        reason="deleted in Label Studio",
        withdrawn_at=WHEN,
    ),
    "conveyor.annotation.rework_requested.v1": EVENT_TYPES[
        "conveyor.annotation.rework_requested.v1"
    ].payload(
        job_id=uuid.UUID(int=15),
        asset_id=ASSET_ID,
        dataset_id=DATASET_ID,
        task_ids=[uuid.UUID(int=14)],
        comment="the left car is missing",
        requested_by="reviewer-1",
        round=1,
    ),
    "conveyor.annotation.accepted.v1": EVENT_TYPES["conveyor.annotation.accepted.v1"].payload(
        job_id=uuid.UUID(int=15),
        asset_id=ASSET_ID,
        dataset_id=DATASET_ID,
        annotation_ids=[uuid.UUID(int=13)],
        shapes=[
            {"class": "car", "type": "bbox", "bbox": {"x": 1, "y": 2, "width": 3, "height": 4}}
        ],
        decided_by="qc",
        automatic=True,
        agreement=0.91,
    ),
    "conveyor.annotation.rejected.v1": EVENT_TYPES["conveyor.annotation.rejected.v1"].payload(
        job_id=uuid.UUID(int=15),
        asset_id=ASSET_ID,
        dataset_id=DATASET_ID,
        annotation_ids=[uuid.UUID(int=13)],
        decided_by="reviewer-1",
        comment="not a street scene",
    ),
    "conveyor.qc.consensus_computed.v1": EVENT_TYPES["conveyor.qc.consensus_computed.v1"].payload(
        job_id=uuid.UUID(int=15),
        asset_id=ASSET_ID,
        dataset_id=DATASET_ID,
        annotation_ids=[uuid.UUID(int=13), uuid.UUID(int=16)],
        annotators=["a", "b"],
        agreement=0.8,
        mean_iou=0.8,
        f1=1.0,
        unmatched_shapes=0,
        class_disagreements=0,
        passed=True,
    ),
    "conveyor.qc.gold_scored.v1": EVENT_TYPES["conveyor.qc.gold_scored.v1"].payload(
        job_id=uuid.UUID(int=15),
        asset_id=ASSET_ID,
        task_id=uuid.UUID(int=14),
        annotation_id=uuid.UUID(int=13),
        vendor_id=uuid.UUID(int=12),
        annotator_id="worker-7",
        precision=1.0,
        recall=0.5,
        f1=0.6667,
        mean_iou=0.9,
        class_accuracy=1.0,
        true_positives=1,
        false_positives=0,
        false_negatives=1,
    ),
    "conveyor.dead_letter.v1": EVENT_TYPES["conveyor.dead_letter.v1"].payload(
        original_topic="conveyor.ingest.events",
        original_partition=2,
        original_offset=41,
        original_event_id=None,
        original_type=None,
        consumer_group="conveyor-audit",
        error="MalformedEvent: not a CloudEvent",
        original_headers={"ce_id": "x"},
        original_value="base64:AAE=",
    ),
}


def envelope(**overrides: Any) -> Envelope:
    fields: dict[str, Any] = {
        "id": "5d0c4a8e-1111-4222-8333-944455556666",
        "source": "/conveyor/ingest",
        "type": ASSET_INGESTED.name,
        "time": WHEN,
        "subject": "asset/0b7e3c1d",
        "actor": "alice",
        "data": SAMPLES[ASSET_INGESTED.name].model_dump(mode="json"),
        "traceparent": TRACEPARENT,
    }
    fields.update(overrides)
    return Envelope(**fields)


GOOD_HEADERS: list[tuple[str, bytes]] = [
    ("ce_id", b"e-1"),
    ("ce_source", b"/test"),
    ("ce_type", OBJECT_CREATED.name.encode()),
    ("ce_time", b"2025-01-02T03:04:05+00:00"),
    ("ce_specversion", b"1.0"),
    ("content-type", b"application/json"),
]


# ---- encode / decode --------------------------------------------------------------------------


def test_encode_then_decode_round_trips_every_envelope_field() -> None:
    original = envelope()
    decoded = decode(*encode(original))
    assert decoded == original
    assert decoded.time == WHEN
    assert decoded.time.utcoffset() == timedelta(hours=2)
    assert decoded.traceparent == TRACEPARENT
    assert decoded.actor == "alice"


def test_encode_then_decode_round_trips_an_envelope_without_optional_attributes() -> None:
    original = envelope(subject=None, actor=None, traceparent=None, time=WHEN.astimezone(UTC))
    decoded = decode(*encode(original))
    assert decoded == original
    assert (decoded.subject, decoded.actor, decoded.traceparent) == (None, None, None)


def test_encode_writes_binary_mode_ce_headers_and_a_json_value() -> None:
    value, headers = encode(envelope())
    header_map = dict(headers)
    assert len(header_map) == len(headers)  # no duplicates
    assert header_map == {
        "ce_id": b"5d0c4a8e-1111-4222-8333-944455556666",
        "ce_source": b"/conveyor/ingest",
        "ce_type": b"conveyor.asset.ingested.v1",
        "ce_time": b"2025-06-07T08:09:10.123456+02:00",
        "ce_specversion": b"1.0",
        "ce_subject": b"asset/0b7e3c1d",
        "ce_actor": b"alice",
        "content-type": b"application/json",
        "traceparent": TRACEPARENT.encode(),
    }
    assert all(isinstance(v, bytes) for v in header_map.values())
    assert json.loads(value) == envelope().data


def test_encode_omits_headers_for_absent_optional_attributes() -> None:
    _, headers = encode(envelope(subject=None, actor=None, traceparent=None))
    assert {name for name, _ in headers} == {
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "ce_specversion",
        "content-type",
    }


@pytest.mark.parametrize("type_name", sorted(EVENT_TYPES))
def test_every_registered_payload_survives_encode_decode_and_validation(type_name: str) -> None:
    sample = SAMPLES[type_name]
    decoded = decode(*encode(envelope(type=type_name, data=sample.model_dump(mode="json"))))
    assert decoded.payload() == sample


STORED_TIMES = [WHEN, WHEN.astimezone(UTC), datetime(2026, 1, 1, tzinfo=UTC)]


@pytest.mark.parametrize("type_name", sorted(EVENT_TYPES))
@pytest.mark.parametrize("time", STORED_TIMES, ids=["offset", "utc", "whole-second"])
def test_encode_stored_gives_the_bytes_and_headers_encode_gives(
    type_name: str, time: datetime
) -> None:
    # What the relay reads is the envelope as the outbox row stores it (dumped to JSON).
    data = SAMPLES[type_name].model_dump(mode="json")
    for optional in ({}, {"subject": None, "actor": None, "traceparent": None}):
        original = envelope(type=type_name, data=data, time=time, **optional)
        stored = original.model_dump(mode="json")
        assert encode_stored(stored, original.traceparent) == encode(original)


def test_decode_accepts_well_formed_headers_with_any_header_order() -> None:
    decoded = decode(b'{"bucket": "b", "key": "k"}', list(reversed(GOOD_HEADERS)))
    assert (decoded.id, decoded.source, decoded.type) == ("e-1", "/test", OBJECT_CREATED.name)
    assert decoded.time == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert decoded.payload() == ObjectCreatedV1(bucket="b", key="k")


@pytest.mark.parametrize(
    ("value", "headers"),
    [
        (b"\x00\xff\xfe not json at all", GOOD_HEADERS),
        (b"{truncated", GOOD_HEADERS),
        (b"[1, 2, 3]", GOOD_HEADERS),
        (b'"a string"', GOOD_HEADERS),
        (b"42", GOOD_HEADERS),
        (b"null", GOOD_HEADERS),
        (None, GOOD_HEADERS),
        (b'{"a": 1}', []),
        (b'{"a": 1}', [("content-type", b"application/json")]),
        (b'{"a": 1}', [h for h in GOOD_HEADERS if h[0] != "ce_type"]),
        (b'{"a": 1}', [h for h in GOOD_HEADERS if h[0] != "ce_source"]),
        (b'{"a": 1}', [(k, b"yesterday" if k == "ce_time" else v) for k, v in GOOD_HEADERS]),
        (b'{"a": 1}', [(k, b"\xff\xfe" if k == "ce_id" else v) for k, v in GOOD_HEADERS]),
        (b'{"a": 1}', [(k, b"text/plain" if k == "content-type" else v) for k, v in GOOD_HEADERS]),
    ],
    ids=[
        "binary-garbage",
        "truncated-json",
        "json-array",
        "json-string",
        "json-number",
        "json-null",
        "tombstone",
        "no-headers",
        "no-ce-headers",
        "no-type",
        "no-source",
        "bad-time",
        "non-utf8-header",
        "text-content-type",
    ],
)
def test_decode_raises_malformed_event_for_messages_conveyor_cannot_read(
    value: bytes | None, headers: list[tuple[str, bytes]]
) -> None:
    with pytest.raises(MalformedEvent):
        decode(value, headers)


def test_decode_refuses_a_message_without_an_event_id() -> None:
    headers = [h for h in GOOD_HEADERS if h[0] != "ce_id"]
    with pytest.raises(MalformedEvent):
        decode(b'{"bucket": "b", "key": "k"}', headers)


def test_malformed_event_is_a_value_error() -> None:
    assert issubclass(MalformedEvent, ValueError)


# ---- registry -----------------------------------------------------------------------------------


def test_samples_cover_exactly_the_registered_event_types() -> None:
    assert set(SAMPLES) == set(EVENT_TYPES)


@pytest.mark.parametrize("type_name", sorted(EVENT_TYPES))
def test_registered_event_types_are_versioned_and_travel_on_a_known_topic(type_name: str) -> None:
    event_type = EVENT_TYPES[type_name]
    assert event_type.name == type_name
    assert re.search(r"\.v\d+$", event_type.name)
    assert event_type.name.startswith("conveyor.")
    assert event_type.topic in ALL_TOPICS
    assert issubclass(event_type.payload, Payload)


def test_topics_have_unique_names_matching_the_audit_subscription_pattern() -> None:
    names = [t.name for t in ALL_TOPICS]
    assert len(set(names)) == len(names)
    assert all(re.match(ALL_TOPICS_PATTERN, n) for n in names)
    assert all(t.partitions >= 1 for t in ALL_TOPICS)


# ---- Envelope.payload and the payload models -----------------------------------------------


def test_envelope_payload_returns_the_registered_model() -> None:
    payload = envelope(type=OBJECT_CREATED.name, data={"bucket": "b", "key": "k/x.jpg"}).payload()
    assert payload == ObjectCreatedV1(bucket="b", key="k/x.jpg")
    assert isinstance(payload, ObjectCreatedV1)
    assert payload.detected_by == "notification"


def test_envelope_payload_refuses_an_unknown_field() -> None:
    env = envelope(type=OBJECT_CREATED.name, data={"bucket": "b", "key": "k", "colour": "red"})
    with pytest.raises(ValidationError) as caught:
        env.payload()
    assert caught.value.errors()[0]["type"] == "extra_forbidden"


def test_envelope_payload_refuses_a_missing_required_field() -> None:
    with pytest.raises(ValidationError):
        envelope(type=OBJECT_CREATED.name, data={"bucket": "b"}).payload()


def test_envelope_payload_refuses_a_value_outside_a_literal() -> None:
    data = {"bucket": "b", "key": "k", "reason": "because", "message": "m"}
    with pytest.raises(ValidationError):
        envelope(type="conveyor.ingest.drop_rejected.v1", data=data).payload()


def test_envelope_payload_raises_unknown_event_type_for_an_unregistered_type() -> None:
    with pytest.raises(UnknownEventType) as caught:
        envelope(type="conveyor.asset.ingested.v99").payload()
    assert "conveyor.asset.ingested.v99" in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("type_name", sorted(EVENT_TYPES))
def test_payload_models_are_frozen(type_name: str) -> None:
    sample = SAMPLES[type_name]
    field = next(iter(type(sample).model_fields))
    with pytest.raises(ValidationError):
        setattr(sample, field, "changed")


def test_envelope_is_frozen() -> None:
    with pytest.raises(ValidationError):
        envelope().id = "other"  # type: ignore[misc]


# ---- is_transient -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        OperationalError("SELECT 1", {}, Exception("connection refused")),
        InterfaceError("SELECT 1", {}, Exception("connection closed")),
        KafkaConnectionError("broker down"),
        KafkaTimeoutError(),
        ConnectionResetError(),
        TimeoutError(),
    ],
    ids=lambda e: type(e).__name__,
)
def test_is_transient_is_true_for_database_broker_and_network_failures(exc: Exception) -> None:
    assert is_transient(exc) is True


@pytest.mark.parametrize(
    "exc",
    [ValueError("bad"), KeyError("k"), MalformedEvent("x"), UnknownEventType("t"), TypeError()],
    ids=lambda e: type(e).__name__,
)
def test_is_transient_is_false_for_errors_of_the_event_or_the_code(exc: Exception) -> None:
    assert is_transient(exc) is False


def test_is_transient_is_false_for_a_payload_validation_error() -> None:
    with pytest.raises(ValidationError) as caught:
        ObjectCreatedV1.model_validate({"bucket": 1})
    assert is_transient(caught.value) is False
