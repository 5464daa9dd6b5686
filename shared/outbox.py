"""The transactional outbox: events are written with the state change, then relayed to Kafka.

A unit of work (:mod:`shared.uow`) writes its staged events with :func:`add_events` in its
transaction. :class:`OutboxRelay` publishes pending rows in id order, woken by
``LISTEN/NOTIFY`` (an insert trigger notifies) with a polling fallback; ``FOR UPDATE SKIP
LOCKED`` lets several relays share the table. A crash between the Kafka acknowledgement and
the ``sent_at`` update re-sends a row: consumers deduplicate by event id, so delivery is
at-least-once and effects exactly-once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from alembic.operations import Operations
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import SpanKind
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    MetaData,
    String,
    Table,
    Text,
    TextClause,
    TextualSelect,
    bindparam,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.events import Envelope, EventType, Payload
from shared.ids import random_uuid
from shared.kafka import encode_stored
from shared.metrics import OUTBOX_PUBLISHED, OUTBOX_WAITING

log = logging.getLogger(__name__)
tracer = trace.get_tracer("conveyor.outbox")


def _columns() -> list[Column[Any]]:
    return [
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("topic", Text, nullable=False),
        Column("key", Text, nullable=True),
        Column("envelope", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("sent_at", DateTime(timezone=True), nullable=True),
    ]


def outbox_table(metadata: MetaData) -> Table:
    """The ``outbox`` table in the schema of ``metadata``."""
    return Table("outbox", metadata, *_columns())


def notify_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel a schema's outbox trigger notifies."""
    return f"{schema}_outbox"


def create_outbox(op: Operations, schema: str) -> None:
    """Migration step: the outbox table, its pending-rows index and its NOTIFY trigger."""
    op.create_table("outbox", *_columns(), schema=schema)
    op.execute(f'CREATE INDEX outbox_pending ON "{schema}".outbox (id) WHERE sent_at IS NULL')
    op.execute(
        f"""
        CREATE FUNCTION "{schema}".outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{notify_channel(schema)}', '');
            RETURN NULL;
        END $$;
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER outbox_notify AFTER INSERT ON "{schema}".outbox
        FOR EACH STATEMENT EXECUTE FUNCTION "{schema}".outbox_notify();
        """
    )


def current_traceparent() -> str | None:
    """The W3C traceparent of the active span, to store with an outbox row (formatted from
    the span's context: the propagator API's carrier round trip cost more than the rest of
    staging an event)."""
    return span_traceparent(trace.get_current_span())


def span_traceparent(span: trace.Span) -> str | None:
    """The W3C traceparent of ``span`` (None if it has no valid context), without making it
    the current span."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"


@dataclass(frozen=True)
class Staged:
    """An event to stage: what :func:`add_events` needs to write one outbox row."""

    event_type: EventType[Any]
    payload: Payload
    source: str
    subject: str | None
    actor: str | None
    key: str | None = None
    event_id: str | None = None
    # The trace the event continues; by default the span current when it is staged.
    traceparent: str | None = None


def _row(staged: Staged, traceparent: str | None) -> tuple[Envelope, dict[str, Any]]:
    if not isinstance(staged.payload, staged.event_type.payload):
        raise TypeError(f"{staged.event_type.name} carries {staged.event_type.payload.__name__}")
    envelope = Envelope(
        id=staged.event_id or str(random_uuid()),
        source=staged.source,
        type=staged.event_type.name,
        time=datetime.now(UTC),
        subject=staged.subject,
        actor=staged.actor,
        data=staged.payload.model_dump(mode="json"),
        traceparent=traceparent,
    )
    row = {
        "event_id": envelope.id,
        "topic": staged.event_type.topic.name,
        "key": staged.key or staged.subject,
        "envelope": envelope.model_dump(mode="json"),
    }
    return envelope, row


async def add_events(
    session: AsyncSession, outbox: Table, events: Sequence[Staged]
) -> list[Envelope]:
    """Stage events for publication in the caller's transaction, in one statement."""
    if not events:
        return []
    envelopes, arrays = event_arrays(events)
    await session.execute(_insert_rows(outbox), arrays)
    return envelopes


def event_arrays(events: Sequence[Staged]) -> tuple[list[Envelope], dict[str, list[Any]]]:
    """The envelopes of ``events`` and their outbox rows as the arrays the outbox inserts take
    (:func:`_insert_rows`, :func:`guarded_insert`): ids, topics, keys, envelopes, subjects."""
    traceparent = current_traceparent()
    built = [_row(staged, staged.traceparent or traceparent) for staged in events]
    rows = [row for _, row in built]
    arrays = {
        "event_ids": [r["event_id"] for r in rows],
        "topics": [r["topic"] for r in rows],
        "keys": [r["key"] for r in rows],
        "envelopes": [json.dumps(r["envelope"]) for r in rows],
        "event_subjects": [staged.subject for staged in events],
    }
    return [envelope for envelope, _ in built], arrays


@functools.cache
def _insert_rows(outbox: Table) -> TextClause:
    """The insert of any number of outbox rows, as one statement over arrays.

    A textual statement, so SQLAlchemy compiles it once: its PostgreSQL ``INSERT ... ON
    CONFLICT`` construct has no cache key and was compiled again on every call. A re-derived
    deterministic id (e.g. a reconcile) must not fail the transaction: it is skipped.
    """
    name = _qualified(outbox)
    return text(
        f"INSERT INTO {name} (event_id, topic, key, envelope) "  # noqa: S608 - our own table
        "SELECT e, t, k, CAST(v AS jsonb) "
        "FROM unnest(:event_ids, :topics, :keys, :envelopes) AS rows (e, t, k, v) "
        "ON CONFLICT (event_id) DO NOTHING"
    ).bindparams(
        bindparam("event_ids", type_=ARRAY(Text)),
        bindparam("topics", type_=ARRAY(Text)),
        bindparam("keys", type_=ARRAY(Text)),
        bindparam("envelopes", type_=ARRAY(Text)),
    )


def guarded_insert(outbox: Table, written: str) -> str:
    """SQL text of an outbox insert to embed in a statement as a ``WITH`` step: the events
    (:func:`event_arrays`) whose subject is the id of a row that the step named ``written``
    returned (``RETURNING id``). So one statement writes rows and the events of exactly the
    rows it wrote (an ``ON CONFLICT DO NOTHING`` skip emits nothing). Its parameters are
    :data:`EVENT_PARAMS`.
    """
    return (
        f"INSERT INTO {_qualified(outbox)} (event_id, topic, key, envelope) "  # noqa: S608
        "SELECT e, t, k, CAST(v AS jsonb) "
        "FROM unnest(:event_ids, :topics, :keys, :envelopes, :event_subjects) "
        "AS staged (e, t, k, v, s) "
        f"WHERE s IN (SELECT CAST(id AS text) FROM {written}) "
        "ON CONFLICT (event_id) DO NOTHING"
    )


# The parameters of :func:`guarded_insert`, as :func:`event_arrays` names them.
EVENT_PARAMS = tuple(
    bindparam(name, type_=ARRAY(Text))
    for name in ("event_ids", "topics", "keys", "envelopes", "event_subjects")
)


def _qualified(outbox: Table) -> str:
    """The outbox table's name for SQL text, schema-qualified when it has a schema."""
    return f'"{outbox.schema}".{outbox.name}' if outbox.schema else outbox.name


@functools.cache
def _relay_statements(outbox: Table) -> tuple[TextualSelect, TextClause]:
    """The relay's statements (take a batch of pending rows, mark rows sent), as text
    compiled once: built as constructs every round, they cost SQLAlchemy a cache key each
    time."""
    name = _qualified(outbox)
    pending = (
        text(
            f"SELECT id, topic, key, envelope FROM {name} "  # noqa: S608 - our own table
            "WHERE sent_at IS NULL ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED"
        )
        .bindparams(bindparam("limit", type_=BigInteger))
        .columns(id=BigInteger, topic=Text, key=Text, envelope=JSONB)
    )
    mark_sent = text(
        f"UPDATE {name} SET sent_at = now() WHERE id = ANY(:ids)"  # noqa: S608 - our own table
    ).bindparams(bindparam("ids", type_=ARRAY(BigInteger)))
    return pending, mark_sent


class OutboxRelay:
    """Publishes a schema's pending outbox rows to Kafka until cancelled."""

    def __init__(
        self,
        *,
        schema: str,
        outbox: Table,
        sessions: async_sessionmaker[AsyncSession],
        producer: AIOKafkaProducer,
        listen_dsn: str,
        batch_size: int = 500,
        poll_interval: float = 2.0,
        busy_interval: float = 0.05,
    ) -> None:
        self._schema = schema
        self._outbox = outbox
        self._sessions = sessions
        self._producer = producer
        self._listen_dsn = listen_dsn
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._busy_interval = busy_interval
        self._wake = asyncio.Event()
        self._next_count = 0.0

    async def run(self) -> None:
        """Relay forever: drain, then sleep until notified or the poll interval passes.

        A round that follows a round with rows starts ``busy_interval`` after it at the
        earliest: under load one round then carries the rows of several commits (one
        transaction, two statements and fewer Kafka requests for all of them), at the cost
        of at most that much latency. After an idle round, a notification is served at once.
        """
        listener = asyncio.create_task(self._listen())
        try:
            published, started = 0, 0.0
            while True:
                if published > 0:  # busy: let the rows of several commits gather
                    await asyncio.sleep(started + self._busy_interval - time.monotonic())
                started = time.monotonic()
                self._wake.clear()
                try:
                    published = await self.publish_pending()
                except Exception as exc:  # Kafka or Postgres away: keep the rows, try again
                    log.warning("outbox relay for %s failed, retrying: %s", self._schema, exc)
                    published = -1
                # At most once a second (a busy relay runs a round every busy_interval), and also
                # while Kafka is away: that is when rows pile up.
                if time.monotonic() >= self._next_count:
                    self._next_count = time.monotonic() + 1.0
                    with contextlib.suppress(Exception):
                        await self.count_waiting()
                if published < 0:
                    await asyncio.sleep(1.0)
                    continue
                if published >= self._batch_size:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_interval)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _listen(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self._listen_dsn)
                await conn.add_listener(notify_channel(self._schema), lambda *_: self._wake.set())
                lost = asyncio.Event()
                conn.add_termination_listener(lambda *_, lost=lost: lost.set())
                self._wake.set()  # rows may have arrived while we were not listening
                await lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox LISTEN connection lost (%s); polling meanwhile", exc)
                await asyncio.sleep(2)
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close()

    async def publish_pending(self) -> int:
        """Publish one batch of pending rows; return how many were published."""
        pending, mark_sent = _relay_statements(self._outbox)
        # The relay's own statements are not traced (each would be a trace of its own, twice
        # a round); every event's publish span continues the event's trace.
        async with self._sessions() as session, session.begin():
            with suppress_instrumentation():
                rows = (await session.execute(pending, {"limit": self._batch_size})).all()
            if not rows:
                return 0
            deliveries = [await self._send(row.topic, row.key, row.envelope) for row in rows]
            await asyncio.gather(*deliveries)
            with suppress_instrumentation():
                await session.execute(mark_sent, {"ids": [r.id for r in rows]})
        OUTBOX_PUBLISHED.labels(self._schema).inc(len(rows))
        return len(rows)

    async def count_waiting(self) -> int:
        """Count the rows not yet published (on the pending-rows index) into the
        ``conveyor_outbox_waiting`` gauge, and return it."""
        outbox = self._outbox
        async with self._sessions() as session:
            with suppress_instrumentation():
                waiting = await session.scalar(
                    select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
                )
        OUTBOX_WAITING.labels(self._schema).set(waiting or 0)
        return int(waiting or 0)

    async def _send(
        self, topic: str, key: str | None, envelope: dict[str, Any]
    ) -> asyncio.Future[Any]:
        """Send one stored envelope (validated when it was written) in a publish span of the
        event's trace; the consumer's span becomes a child of that span."""
        stored_parent = envelope.get("traceparent")
        parent = propagate.extract({"traceparent": stored_parent}) if stored_parent else None
        span = tracer.start_span(
            f"publish {topic}",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": topic,
                "messaging.message.id": envelope["id"],
                "cloudevents.event_type": envelope["type"],
            },
        )
        try:
            value, headers = encode_stored(envelope, span_traceparent(span))
            future: asyncio.Future[Any] = await self._producer.send(
                topic, value=value, key=key.encode() if key else None, headers=headers
            )
            return future
        finally:
            span.end()
