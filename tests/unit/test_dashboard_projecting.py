"""The dashboard's pure parts: event times to chart buckets, trace ids, latest-event picks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.dashboard.use_cases.overview import BUCKET_STEPS, MAX_BUCKETS, bucket_seconds
from services.dashboard.use_cases.projecting import _last_per, minute, trace_id
from shared.events import ASSET_CLEANED, AssetCleanedV1, Envelope
from shared.routing import Event

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_minute_truncates_to_the_minute_and_keeps_the_zone() -> None:
    assert minute(T0 + timedelta(seconds=59, microseconds=999)) == T0
    assert minute(T0 + timedelta(minutes=1)) == T0 + timedelta(minutes=1)
    assert minute(T0).tzinfo is UTC


@pytest.mark.parametrize(
    ("traceparent", "expected"),
    [
        (
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "4bf92f3577b34da6a3ce929d0e0e4736",
        ),
        (None, None),
        ("", None),
        ("garbage", None),
        ("00-short-00f067aa0ba902b7-01", None),
    ],
)
def test_trace_id_is_read_from_a_w3c_traceparent(
    traceparent: str | None, expected: str | None
) -> None:
    assert trace_id(traceparent) == expected


@pytest.mark.parametrize("hours", [0.01, 0.25, 1, 24, 24 * 7, 24 * 365])
def test_buckets_keep_a_chart_under_its_point_limit_with_the_narrowest_width(hours: float) -> None:
    span = timedelta(hours=hours)
    width = bucket_seconds(T0, T0 + span)
    assert width in BUCKET_STEPS
    narrower = [s for s in BUCKET_STEPS if s < width]
    if width != BUCKET_STEPS[-1]:
        assert span.total_seconds() / width <= MAX_BUCKETS
    assert all(span.total_seconds() / s > MAX_BUCKETS for s in narrower)


def cleaned(asset: uuid.UUID, at: datetime, event_id: str) -> Event[AssetCleanedV1]:
    payload = AssetCleanedV1(
        asset_id=asset,
        dataset_id=uuid.uuid4(),
        dataset_slug="d",
        media_type="image/jpeg",
        metrics={},
        policy_version=1,
    )
    envelope = Envelope(
        id=event_id,
        source="/test",
        type=ASSET_CLEANED.name,
        time=at,
        data=payload.model_dump(mode="json"),
    )
    return Event(envelope, ASSET_CLEANED.topic.name, payload)


def test_the_latest_event_per_key_wins_by_event_time_not_arrival() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    late_arrival_older = cleaned(a, T0, "a-old")
    events = [
        cleaned(a, T0 + timedelta(seconds=5), "a-new"),
        late_arrival_older,
        cleaned(b, T0, "b"),
    ]
    picked = {e.payload.asset_id: e.id for e in _last_per(events, lambda e: e.payload.asset_id)}
    assert picked == {a: "a-new", b: "b"}
    # equal times: the later arrival wins (a redelivery of the same fact changes nothing)
    same = [cleaned(a, T0, "first"), cleaned(a, T0, "second")]
    assert [e.id for e in _last_per(same, lambda e: e.payload.asset_id)] == ["second"]
