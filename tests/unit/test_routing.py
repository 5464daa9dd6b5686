"""The routes table: every event reaches its handler in one step, or is ignored on purpose."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from pydantic import ValidationError

from services.audit.use_cases.appending import append_events
from services.clean import consumer as clean_consumer
from services.dashboard import consumer as dashboard_consumer
from services.ingest import consumer as ingest_consumer
from services.labeling_dispatch import consumer as labeling_consumer
from shared.events import (
    ALL_TOPICS,
    ALL_TOPICS_PATTERN,
    API_KEY_CREATED,
    API_KEY_REVOKED,
    API_KEY_SCOPE_CHANGED,
    ASSET_INGESTED,
    DATASET_CREATED,
    DROP_REJECTED,
    INGEST_EVENTS,
    ApiKeyRevokedV1,
    AssetIngestedV1,
    DatasetCreatedV1,
    Envelope,
    Payload,
    UnknownEventType,
    event_type_of,
    types_on,
)
from shared.routing import (
    IGNORED,
    Batched,
    Event,
    Router,
    Routes,
    RoutingError,
    routing_problems,
)


@dataclass
class Journal:
    """A context that writes down what the handlers were given."""

    calls: list[tuple[str, list[str]]] = field(default_factory=list)
    batch_size: int = 2


async def on_asset(journal: Journal, events: Sequence[Event[AssetIngestedV1]]) -> None:
    journal.calls.append(("assets", [e.id for e in events]))


async def on_dataset(journal: Journal, event: Event[DatasetCreatedV1]) -> None:
    journal.calls.append(("dataset", [event.id]))


async def on_revoked_wrongly_typed(journal: Journal, event: Event[DatasetCreatedV1]) -> None:
    journal.calls.append(("never", [event.id]))


ROUTES: Routes[Journal] = {
    ASSET_INGESTED: Batched(on_asset, size=lambda journal: journal.batch_size),
    DATASET_CREATED: on_dataset,
    DROP_REJECTED: IGNORED,
    API_KEY_CREATED: IGNORED,
    API_KEY_REVOKED: IGNORED,
    API_KEY_SCOPE_CHANGED: IGNORED,
}


def record(topic: str = INGEST_EVENTS.name) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic, 0, 0, 0, 0, None, b"", None, 0, 0, [])


def envelope(payload: Payload, ident: str, type_name: str | None = None) -> Envelope:
    return Envelope(
        id=ident,
        source="/test",
        type=type_name or event_type_of(payload).name,
        time=datetime.now(UTC),
        data=payload.model_dump(mode="json"),
    )


def asset(ident: str) -> Envelope:
    return envelope(
        AssetIngestedV1(
            asset_id=uuid.uuid4(),
            dataset_id=uuid.uuid4(),
            dataset_slug="cars",
            filename="a.jpg",
            media_type="image/jpeg",
            size_bytes=3,
            sha256="0" * 64,
            bucket="conveyor-raw",
            object_key="sha256/00/00/" + "0" * 64,
            source="upload",
            uploaded_by="alice",
            tags=[],
        ),
        ident,
    )


def dataset(ident: str) -> Envelope:
    payload = DatasetCreatedV1(dataset_id=uuid.uuid4(), slug="cars", name="Cars", created_by="a")
    return envelope(payload, ident)


def revoked(ident: str) -> Envelope:
    return envelope(ApiKeyRevokedV1(key_id=uuid.uuid4(), revoked_by="admin"), ident)


async def test_a_poll_is_handled_in_order_with_batched_runs_split_by_size() -> None:
    journal = Journal()
    router = Router(ROUTES, journal, topics=[INGEST_EVENTS])
    poll = [asset("a1"), asset("a2"), asset("a3"), revoked("k1"), dataset("d1"), asset("a4")]
    await router.handle_batch([(e, record()) for e in poll])
    assert journal.calls == [
        ("assets", ["a1", "a2"]),
        ("assets", ["a3"]),
        ("dataset", ["d1"]),
        ("assets", ["a4"]),
    ]
    assert router.batches


async def test_one_event_reaches_a_batched_route_as_a_run_of_one() -> None:
    journal = Journal()
    await Router(ROUTES, journal, topics=[INGEST_EVENTS]).handle(asset("a1"), record())
    assert journal.calls == [("assets", ["a1"])]


async def test_a_handler_gets_the_validated_payload_of_its_type() -> None:
    seen: list[Any] = []

    async def keep(_: Journal, event: Event[DatasetCreatedV1]) -> None:
        seen.append(event.payload)

    router = Router({**ROUTES, DATASET_CREATED: keep}, Journal(), topics=[INGEST_EVENTS])
    await router.handle(dataset("d1"), record())
    assert isinstance(seen[0], DatasetCreatedV1)
    assert seen[0].slug == "cars"


async def test_a_payload_that_does_not_fit_its_type_is_refused() -> None:
    bad = dataset("d1").model_copy(update={"data": {"slug": "x"}})
    with pytest.raises(ValidationError):
        await Router(ROUTES, Journal(), topics=[INGEST_EVENTS]).handle(bad, record())


async def test_an_unknown_event_type_is_an_error_not_a_silent_drop() -> None:
    journal = Journal()
    stranger = dataset("d1").model_copy(update={"type": "conveyor.something.new.v1"})
    with pytest.raises(UnknownEventType):
        await Router(ROUTES, journal, topics=[INGEST_EVENTS]).handle(stranger, record())
    assert journal.calls == []


def test_a_table_that_forgets_a_type_of_a_subscribed_topic_is_refused() -> None:
    incomplete = {k: v for k, v in ROUTES.items() if k != API_KEY_REVOKED}
    with pytest.raises(RoutingError, match=re.escape(API_KEY_REVOKED.name)):
        Router(incomplete, Journal(), topics=[INGEST_EVENTS])


def test_a_handler_annotated_with_another_payload_is_refused() -> None:
    wrong: Routes[Journal] = {**ROUTES, API_KEY_REVOKED: on_revoked_wrongly_typed}
    problems = routing_problems(wrong, [INGEST_EVENTS])
    assert problems == [
        "conveyor.api_key.revoked.v1 carries ApiKeyRevokedV1, its handler takes DatasetCreatedV1"
    ]


def test_a_route_for_a_topic_that_is_not_read_is_refused() -> None:
    assert routing_problems(ROUTES, []) != []


def test_only_routes_with_a_batched_handler_make_the_consumer_take_whole_polls() -> None:
    singles: Routes[Journal] = {**ROUTES, ASSET_INGESTED: IGNORED}
    assert not Router(singles, Journal(), topics=[INGEST_EVENTS]).batches


@pytest.mark.parametrize(
    ("routes", "topics"),
    [
        (ingest_consumer.ROUTES, ingest_consumer.TOPICS),
        (clean_consumer.ROUTES, clean_consumer.TOPICS),
        (labeling_consumer.ROUTES, labeling_consumer.TOPICS),
        (dashboard_consumer.ROUTES, ALL_TOPICS),
    ],
    ids=["ingest", "clean", "labeling", "dashboard"],
)
def test_every_type_on_every_subscribed_topic_is_routed_or_ignored(
    routes: Routes[Any], topics: list[Any]
) -> None:
    assert routing_problems(routes, topics) == []
    for topic in topics:
        for event_type in types_on(topic):
            assert event_type in routes, event_type.name


def test_audit_reads_every_topic_through_its_catch_all_route() -> None:
    assert all(re.match(ALL_TOPICS_PATTERN, t.name) for t in ALL_TOPICS)
    router = Router({}, object(), pattern=ALL_TOPICS_PATTERN, catch_all=append_events)
    assert router.batches


def test_a_pattern_subscription_without_a_catch_all_is_refused() -> None:
    with pytest.raises(RoutingError):
        Router({}, object(), pattern=ALL_TOPICS_PATTERN)


def test_each_payload_model_belongs_to_one_event_type() -> None:
    assert (
        event_type_of(DatasetCreatedV1(dataset_id=uuid.uuid4(), slug="c", name="C", created_by="a"))
        == DATASET_CREATED
    )
    with pytest.raises(TypeError):
        event_type_of(Payload())
