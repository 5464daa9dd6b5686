"""Kafka plumbing: CloudEvents binary encoding, the producer, topic creation and the consumer loop.

The consumer commits offsets only after the handler's database transaction committed; the
handler's unit of work records the event id in the inbox in that same transaction, so a
redelivered message has no second effect. A message that keeps failing is published to
``conveyor.dlq`` with its error and original headers, and the consumer moves on.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event, to_binary_event
from cloudevents.core.v1.event import CloudEvent
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from shared.db import is_unavailable
from shared.events import DEAD_LETTER, DEAD_LETTERS, DeadLetterV1, Envelope, Topic, UnknownEventType
from shared.metrics import EVENTS_CONSUMED, EVENTS_DEAD_LETTERED, PARTITIONS_ASSIGNED
from shared.routing import Router, RoutingError

log = logging.getLogger(__name__)
tracer = trace.get_tracer("conveyor.kafka")

Headers = list[tuple[str, bytes]]
_REQUIRED_HEADERS = ("ce_id", "ce_source", "ce_type", "ce_specversion", "ce_time")


class MalformedEvent(ValueError):
    """A Kafka message that is not a CloudEvent Conveyor can read. Never retried."""


# Faults of the event itself that a retry cannot cure: straight to the dead-letter topic.
_NOT_RETRIED = (ValidationError, UnknownEventType, RoutingError)


def encode(envelope: Envelope) -> tuple[bytes, Headers]:
    """Encode an envelope as a CloudEvents binary-mode Kafka value and headers."""
    attributes: dict[str, Any] = {
        "id": envelope.id,
        "source": envelope.source,
        "type": envelope.type,
        "time": envelope.time,
        "datacontenttype": "application/json",
        "specversion": "1.0",
    }
    if envelope.subject:
        attributes["subject"] = envelope.subject
    if envelope.actor:
        attributes["actor"] = envelope.actor
    message = to_binary_event(CloudEvent(attributes=attributes, data=envelope.data))
    headers = list(message.headers.items())
    if envelope.traceparent:
        headers.append(("traceparent", envelope.traceparent.encode()))
    return message.value, headers


def encode_stored(envelope: Mapping[str, Any], traceparent: str | None) -> tuple[bytes, Headers]:
    """:func:`encode` of an envelope as an outbox row stores it (``Envelope`` dumped to JSON),
    carrying ``traceparent``: the same bytes and headers, without validating it again.

    The row was built from a validated ``Envelope`` when it was written; a relay publishing
    it needs only its strings, so it skips the model and the CloudEvents SDK objects.
    """
    headers: Headers = [
        ("ce_id", envelope["id"].encode()),
        ("ce_source", envelope["source"].encode()),
        ("ce_type", envelope["type"].encode()),
        ("ce_time", envelope["time"].encode()),
        ("content-type", b"application/json"),
        ("ce_specversion", b"1.0"),
    ]
    if envelope.get("subject"):
        headers.append(("ce_subject", envelope["subject"].encode()))
    if envelope.get("actor"):
        headers.append(("ce_actor", envelope["actor"].encode()))
    if traceparent:
        headers.append(("traceparent", traceparent.encode()))
    return json.dumps(envelope["data"]).encode(), headers


def decode(value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> Envelope:
    """Decode a binary-mode CloudEvents Kafka message into an envelope."""
    header_map = {k: v for k, v in headers}
    # The SDK would invent a random id or time for a missing one, defeating deduplication.
    missing = [a for a in _REQUIRED_HEADERS if a not in header_map]
    if missing:
        raise MalformedEvent(f"not a CloudEvent: missing {', '.join(missing)}")
    if header_map["ce_specversion"] != b"1.0":
        raise MalformedEvent("not a CloudEvents 1.0 event")
    try:
        event = from_binary_event(KafkaMessage(headers=header_map, key=None, value=value or b""))
        data = event.get_data()
        if not isinstance(data, dict):
            raise MalformedEvent("event data is not a JSON object")
        traceparent = header_map.get("traceparent")
        return Envelope(
            id=event.get_id(),
            source=event.get_source(),
            type=event.get_type(),
            time=event.get_time(),
            subject=event.get_subject(),
            actor=event.get_extension("actor"),
            data=data,
            traceparent=traceparent.decode() if traceparent else None,
        )
    except MalformedEvent:
        raise
    except Exception as exc:  # the SDK raises several unrelated types for bad input
        raise MalformedEvent(f"not a CloudEvent: {exc}") from exc


def new_producer(bootstrap_servers: str) -> AIOKafkaProducer:
    """A producer that waits for all in-sync replicas and never duplicates on its own retries."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=2,
        request_timeout_ms=15000,
    )


async def ensure_topics(bootstrap_servers: str, topics: Sequence[Topic]) -> list[str]:
    """Create the missing topics with their partition counts; return the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t.name not in existing]
        if missing:
            # Another service may create the same topic at the same moment.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(t.name, num_partitions=t.partitions, replication_factor=1)
                        for t in missing
                    ]
                )
        return [t.name for t in missing]
    finally:
        await admin.close()


def is_transient(exc: BaseException) -> bool:
    """Infrastructure errors worth retrying without limit (the event itself is fine)."""
    return isinstance(exc, KafkaError) or is_unavailable(exc)


# What a lingering consumer's fetch waits for: about 30 events of Conveyor's size.
LINGER_BYTES = 32 * 1024


class EventConsumer:
    """Consumes a service's topics in its consumer group and hands each event to its router.

    Every route must apply its effects and its inbox claim in one database transaction.
    Offsets are committed after each partition's poll was handled.
    """

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        group_id: str,
        router: Router[Any],
        producer: AIOKafkaProducer,
        max_attempts: int = 3,
        retry_wait_seconds: float = 0.2,
        max_poll_records: int = 200,
        span_per_event: bool = True,
        whole_poll: bool = False,
        linger_ms: int = 0,
    ) -> None:
        """``span_per_event`` False: a batched poll gets one consumer span instead of one per
        event continuing each event's trace (for a read side catching up on history, where a
        span per event costs more than the projection's own work).

        ``whole_poll`` True (batched routers only): a poll's partitions are handled as one
        batch, each partition's events still in order, and their offsets committed at once;
        for a consumer whose writes queue on one lock anyway (audit's single chain), where a
        transaction per partition would only wait its turn and pay its own round trips.

        ``linger_ms``: the broker holds a fetch up to this long for 32 KiB of events, so a
        steady trickle arrives in batches rather than one event per poll (each poll costs a
        transaction); it adds at most that much latency. 0: every event as soon as it is there."""
        self._bootstrap = bootstrap_servers
        self._group_id = group_id
        self._router = router
        self._producer = producer
        self._max_attempts = max_attempts
        self._retry_wait = retry_wait_seconds
        self._max_poll_records = max_poll_records
        self._span_per_event = span_per_event
        self._whole_poll = whole_poll and router.batches
        self._linger_ms = linger_ms
        self._consumer: AIOKafkaConsumer | None = None
        self.assigned = asyncio.Event()

    async def run(self) -> None:
        """Consume until cancelled."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._max_poll_records,
            metadata_max_age_ms=5000,
            **(
                {"fetch_min_bytes": LINGER_BYTES, "fetch_max_wait_ms": self._linger_ms}
                if self._linger_ms
                else {}
            ),
        )
        self._consumer = consumer
        await consumer.start()
        try:
            if self._router.pattern:
                consumer.subscribe(pattern=self._router.pattern)
            else:
                consumer.subscribe(self._router.topics)
            while True:
                batch = await consumer.getmany(timeout_ms=500)
                assigned = len(consumer.assignment())
                PARTITIONS_ASSIGNED.labels(self._group_id).set(assigned)
                if assigned:
                    self.assigned.set()
                if self._whole_poll and batch:
                    await self._process_batch([r for records in batch.values() for r in records])
                    await consumer.commit({tp: rs[-1].offset + 1 for tp, rs in batch.items()})
                    continue
                # Partitions are independent: handle them side by side (order is kept within
                # each), so I/O waits and thread-pool work of one do not stall the others.
                await asyncio.gather(
                    *(
                        self._process_partition(consumer, tp, records)
                        for tp, records in batch.items()
                    )
                )
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()

    async def _process_partition(
        self,
        consumer: AIOKafkaConsumer,
        tp: TopicPartition,
        records: list[ConsumerRecord[bytes, bytes]],
    ) -> None:
        if self._router.batches:
            # A partition's whole poll at once: batched routes pay their statements per run.
            await self._process_batch(records)
        else:
            for record in records:
                await self._process(record)
        await consumer.commit({tp: records[-1].offset + 1})

    def _span_args(self, envelope: Envelope, record: ConsumerRecord[bytes, bytes]) -> Any:
        return {
            "name": f"process {record.topic}",
            "context": propagate.extract({"traceparent": envelope.traceparent or ""}),
            "kind": SpanKind.CONSUMER,
            "attributes": {
                "messaging.system": "kafka",
                "messaging.destination.name": record.topic,
                "messaging.consumer.group.name": self._group_id,
                "messaging.message.id": envelope.id,
                "cloudevents.event_type": envelope.type,
                "messaging.kafka.offset": record.offset,
            },
        }

    async def _decode_or_dead_letter(self, record: ConsumerRecord[bytes, bytes]) -> Envelope | None:
        try:
            return decode(record.value, record.headers)
        except MalformedEvent as exc:
            await self._dead_letter(record, None, str(exc))
            return None

    async def _process_batch(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        items = []
        for record in records:
            envelope = await self._decode_or_dead_letter(record)
            if envelope is not None:
                items.append((envelope, record))
        if not items:
            return
        if self._span_per_event:
            spans = [tracer.start_span(**self._span_args(e, r)) for e, r in items]
        else:
            first = items[0][1]
            spans = [
                tracer.start_span(
                    f"process {first.topic}",
                    kind=SpanKind.CONSUMER,
                    attributes={
                        "messaging.system": "kafka",
                        "messaging.destination.name": first.topic,
                        "messaging.consumer.group.name": self._group_id,
                        "messaging.batch.message_count": len(items),
                    },
                )
            ]
        try:
            await self._handle_with_retries(lambda: self._router.handle_batch(items), attempts=1)
            for envelope, _ in items:
                EVENTS_CONSUMED.labels(self._group_id, envelope.type, "ok").inc()
        except Exception as exc:
            # One bad event must not hold up the others: handle them one by one instead.
            log.warning("batch of %d failed (%s); handling one by one", len(items), exc)
            for envelope, record in items:
                await self._process_decoded(envelope, record)
        finally:
            for span in spans:
                span.end()

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        envelope = await self._decode_or_dead_letter(record)
        if envelope is not None:
            await self._process_decoded(envelope, record)

    async def _process_decoded(
        self, envelope: Envelope, record: ConsumerRecord[bytes, bytes]
    ) -> None:
        with tracer.start_as_current_span(**self._span_args(envelope, record)) as span:
            try:
                await self._handle_with_retries(lambda: self._router.handle(envelope, record))
                EVENTS_CONSUMED.labels(self._group_id, envelope.type, "ok").inc()
            except Exception as exc:
                span.record_exception(exc)
                EVENTS_CONSUMED.labels(self._group_id, envelope.type, "dead_letter").inc()
                await self._dead_letter(record, envelope, f"{type(exc).__name__}: {exc}")

    async def _handle_with_retries(
        self, call: Callable[[], Awaitable[None]], attempts: int | None = None
    ) -> None:
        attempt = 0
        while True:
            try:
                # Bounded retries for errors of the event or handler itself...
                async for try_ in AsyncRetrying(
                    stop=stop_after_attempt(attempts or self._max_attempts),
                    wait=wait_exponential(multiplier=self._retry_wait, max=2),
                    retry=retry_if_exception(
                        lambda e: not is_transient(e) and not isinstance(e, _NOT_RETRIED)
                    ),
                    reraise=True,
                ):
                    with try_:
                        await call()
                return
            except Exception as exc:
                # ...while a database or broker outage is waited out: the event is not at fault.
                if not is_transient(exc):
                    raise
                attempt += 1
                delay = min(30.0, 0.5 * 2 ** min(attempt, 6))
                log.warning("transient failure, retrying in %.1fs: %s", delay, exc)
                await asyncio.sleep(delay)

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], envelope: Envelope | None, error: str
    ) -> None:
        if record.topic == DEAD_LETTERS.name:
            # Never feed the dead-letter topic back into itself.
            log.error("dropping unprocessable dead letter at offset %s: %s", record.offset, error)
            return
        log.error(
            "dead-lettering %s/%s@%s: %s", record.topic, record.partition, record.offset, error
        )
        EVENTS_DEAD_LETTERED.labels(self._group_id, record.topic).inc()
        value = record.value or b""
        try:
            original_value = value.decode()
        except UnicodeDecodeError:
            original_value = "base64:" + base64.b64encode(value).decode()
        payload = DeadLetterV1(
            original_topic=record.topic,
            original_partition=record.partition,
            original_offset=record.offset,
            original_event_id=envelope.id if envelope else None,
            original_type=envelope.type if envelope else None,
            consumer_group=self._group_id,
            error=error[:4000],
            original_headers={k: v.decode(errors="replace") for k, v in record.headers},
            original_value=original_value[:100_000],
        )
        # Deterministic id: redelivery of the same failure is the same dead letter.
        event_id = uuid.uuid5(
            uuid.NAMESPACE_URL,
            f"dlq:{self._group_id}:{record.topic}:{record.partition}:{record.offset}",
        )
        letter = Envelope(
            id=str(event_id),
            source=f"/conveyor/{self._group_id}",
            type=DEAD_LETTER.name,
            time=datetime.now(UTC),
            subject=envelope.subject if envelope else None,
            actor=self._group_id,
            data=payload.model_dump(mode="json"),
            traceparent=envelope.traceparent if envelope else None,
        )
        value_bytes, headers = encode(letter)
        key = record.key
        await self._producer.send_and_wait(
            DEAD_LETTERS.name, value=value_bytes, key=key, headers=headers
        )


__all__ = [
    "EventConsumer",
    "MalformedEvent",
    "TopicPartition",
    "decode",
    "encode",
    "ensure_topics",
    "new_producer",
]
