"""The unit of work: one database transaction with the service's outbox and inbox.

A use case opens a unit of work, reads and writes through its session (via the service's
repository), stages the events it emits with :meth:`UnitOfWork.emit`, claims the events it
handles with :meth:`UnitOfWork.claim`, and leaves the block: the staged events are written to
the outbox in one statement and the transaction commits. That exit is the only place a service
commits, but for a :class:`SingleStatement` (a hot write that is one statement, committed by
itself). An exception rolls everything back, events and inbox claims included.

Keep object-store and other network I/O outside the block: a unit of work holds a pooled
connection and row locks for as long as it is open.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared import inbox as inbox_records
from shared.events import Envelope, EventType, Payload, event_type_of
from shared.outbox import Staged, add_events, current_traceparent, event_arrays


@dataclass(frozen=True)
class Emitted:
    """An event a unit of work will write to the outbox when it commits."""

    event_type: EventType[Any]
    payload: Payload
    subject: str | None
    actor: str | None
    key: str | None
    event_id: str | None
    traceparent: str | None


class UnitOfWork:
    """One open transaction: :attr:`session`, staged events and inbox claims. Not reusable."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        outbox: Table | None,
        inbox: Table | None,
        source: str,
        consumer: str,
    ) -> None:
        self.session = session
        self._outbox = outbox
        self._inbox = inbox
        self._source = source
        self._consumer = consumer
        self._staged: list[Emitted] = []
        self._before_commit: list[Callable[[], Awaitable[None]]] = []
        # Work a use case defers to the commit, by name (e.g. counters summed over a run).
        self.deferred: dict[str, Any] = {}

    def before_commit(self, step: Callable[[], Awaitable[None]]) -> None:
        """Run ``step`` once, just before the commit: writes to hot rows (shared counters) go
        last, so their row locks are held for the commit only, not the whole transaction."""
        self._before_commit.append(step)

    async def run_before_commit(self) -> None:
        """The deferred steps, in the order they were registered."""
        steps, self._before_commit = self._before_commit, []
        for step in steps:
            await step()

    def emit(
        self,
        payload: Payload,
        *,
        subject: str | None,
        actor: str | None,
        key: str | None = None,
        event_id: str | None = None,
        traceparent: str | None = None,
    ) -> None:
        """Stage an event; its type comes from the payload's class.

        ``key`` defaults to ``subject`` (the aggregate id); ``event_id`` to a random UUID (pass a
        deterministic one when a retry must yield the same event); ``traceparent`` to the span
        current now, so each event continues the trace that caused it.
        """
        if self._outbox is None:
            raise TypeError(f"{self._source} has no outbox: it emits no events")
        self._staged.append(
            Emitted(
                event_type_of(payload),
                payload,
                subject,
                actor,
                key,
                event_id,
                traceparent or current_traceparent(),
            )
        )

    async def claim(self, envelope: Envelope) -> bool:
        """Record that this consumer applies ``envelope``; False if an earlier delivery did."""
        return await inbox_records.claim(self.session, self._table(), envelope.id, self._consumer)

    async def claim_all(self, envelopes: Sequence[Envelope]) -> set[str]:
        """:meth:`claim` for many events in one statement: the ids not applied before."""
        ids = [e.id for e in envelopes]
        return await inbox_records.claim_many(self.session, self._table(), ids, self._consumer)

    def _table(self) -> Table:
        if self._inbox is None:
            raise TypeError(f"{self._source} has no inbox: it claims no events")
        return self._inbox

    async def flush_events(self) -> list[Envelope]:
        """Write the staged events to the outbox now (the commit does it anyway)."""
        staged, self._staged = self._staged, []
        if not staged or self._outbox is None:
            return []
        return await add_events(
            self.session,
            self._outbox,
            [
                Staged(
                    e.event_type,
                    e.payload,
                    self._source,
                    e.subject,
                    e.actor,
                    e.key,
                    e.event_id,
                    e.traceparent,
                )
                for e in staged
            ],
        )


class SingleStatement:
    """A write that is one statement, committed on its own: no ``BEGIN`` and ``COMMIT`` round
    trips, so it costs one round trip where a unit of work costs at least three.

    For a hot path whose whole write fits one statement: rows, and the events of the rows it
    wrote. Events are staged with :meth:`emit` as in a unit of work; the repository's
    statement writes them with a ``WITH`` step (:func:`shared.outbox.guarded_insert` on the
    service's outbox) from :meth:`event_parameters`: only the events whose subject is the id
    of a row the statement wrote. One statement is atomic, so rows and events commit together or
    not at all. Every further statement on :attr:`session` commits by itself too: only reads
    belong there.
    """

    def __init__(self, session: AsyncSession, *, source: str) -> None:
        self.session = session
        self._source = source
        self._staged: list[Staged] = []

    def emit(
        self,
        payload: Payload,
        *,
        subject: str,
        actor: str | None,
        key: str | None = None,
        event_id: str | None = None,
        traceparent: str | None = None,
    ) -> None:
        """Stage an event (as :meth:`UnitOfWork.emit`), written only if its subject's row is."""
        self._staged.append(
            Staged(
                event_type_of(payload),
                payload,
                self._source,
                subject,
                actor,
                key,
                event_id,
                traceparent or current_traceparent(),
            )
        )

    def event_parameters(self) -> dict[str, list[Any]]:
        """The staged events as the parameters of :meth:`outbox_step`."""
        return event_arrays(self._staged)[1]


class UnitsOfWork:
    """Opens units of work for one service; built once in the service's lifespan."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        outbox: Table | None,
        inbox: Table | None,
        source: str,
        consumer: str,
    ) -> None:
        """``outbox``/``inbox`` are None for a service that emits/consumes no events."""
        self.sessions = sessions
        self.outbox = outbox
        self.inbox = inbox
        self.source = source
        self.consumer = consumer

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[UnitOfWork]:
        """A transaction that commits, with its staged events, when the block ends normally."""
        async with self.sessions() as session, session.begin():
            uow = UnitOfWork(
                session,
                outbox=self.outbox,
                inbox=self.inbox,
                source=self.source,
                consumer=self.consumer,
            )
            yield uow
            await uow.run_before_commit()
            await uow.flush_events()
            # leaving ``session.begin()`` commits: the one commit of every write

    @contextlib.asynccontextmanager
    async def single_statement(self) -> AsyncIterator[SingleStatement]:
        """A :class:`SingleStatement` write: its session runs in autocommit. A session bound to
        a connection (one already in a transaction, as the tests' rolled-back sessions are)
        cannot leave that transaction: there the write commits when the block ends."""
        if self.outbox is None:
            raise TypeError(f"{self.source} has no outbox: it emits no events")
        async with self.sessions() as session:
            if not isinstance(session.bind, AsyncEngine):
                async with session.begin():
                    yield SingleStatement(session, source=self.source)
                return
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            yield SingleStatement(session, source=self.source)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for queries only: nothing it does is committed."""
        async with self.sessions() as session:
            yield session

    async def applied(self, envelopes: Iterable[Envelope]) -> set[str]:
        """Ids among ``envelopes`` this consumer has applied already (a read; claims nothing)."""
        ids = [e.id for e in envelopes]
        if self.inbox is None:
            return set()
        async with self.sessions() as session:
            return await inbox_records.applied(session, self.inbox, ids, self.consumer)
