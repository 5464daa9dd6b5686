"""Event type -> handler, declared once per service.

Each service declares a table in its ``consumer.py``::

    ROUTES: Routes[Clean] = {
        ASSET_INGESTED: Batched(clean_assets, size=lambda clean: clean.settings.batch_size),
        DATASET_CREATED: remember_dataset,
        API_KEY_CREATED: IGNORED,
    }

A plain handler takes the service's context (what its use cases need, built in the lifespan)
and one :class:`Event` whose ``payload`` is already validated against the model of its type.
A :class:`Batched` handler takes a run of consecutive events of its type from one partition's
poll, at most ``size`` at a time, so it can pay its statements once per run. ``IGNORED`` says
on purpose that the service has nothing to do with a type it receives.

:class:`Router` refuses a table that leaves a type of a subscribed topic unmentioned, or whose
handler is annotated with another payload model than its type carries; so an event can never
be dropped silently because nobody wrote its branch.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar, get_args, get_origin

from aiokafka import ConsumerRecord

from shared.events import EVENT_TYPES, Envelope, EventType, Payload, Topic, types_on

C = TypeVar("C")
P = TypeVar("P", bound=Payload)
Record: TypeAlias = ConsumerRecord[bytes, bytes]


@dataclass(frozen=True)
class Event(Generic[P]):
    """A consumed event: its envelope, the topic it came from and its validated payload."""

    envelope: Envelope
    topic: str
    payload: P

    @property
    def id(self) -> str:
        """The CloudEvents id (the inbox key)."""
        return self.envelope.id


@dataclass(frozen=True)
class Delivered:
    """A consumed event whatever its type, payload not validated (for catch-all consumers)."""

    envelope: Envelope
    topic: str


Handler: TypeAlias = Callable[[C, Event[Any]], Awaitable[None]]


@dataclass(frozen=True)
class Batched(Generic[C, P]):
    """A route whose handler takes runs of consecutive events of its type."""

    handler: Callable[[C, Sequence[Event[P]]], Awaitable[None]]
    # Largest run per call: a number, or read from the context (e.g. a setting).
    size: int | Callable[[C], int] | None = None


class Ignored:
    """The route of a type a service receives and deliberately does nothing with."""

    def __repr__(self) -> str:
        return "IGNORED"


IGNORED = Ignored()

Route: TypeAlias = Handler[C] | Batched[C, Any] | Ignored
Routes: TypeAlias = Mapping[EventType[Any], Route[C]]
CatchAll: TypeAlias = Callable[[C, Sequence[Delivered]], Awaitable[None]]


class RoutingError(ValueError):
    """A routes table that does not fit the topics it is meant for."""


AssetEvents = TypeVar("AssetEvents", bound=Event[Any])


def last_per_asset(events: Sequence[AssetEvents]) -> list[AssetEvents]:
    """One event per asset of a run (the last): a projection's one INSERT ... ON CONFLICT
    cannot touch a row twice."""
    return list({e.payload.asset_id: e for e in events}.values())


def routing_problems(routes: Routes[Any], topics: Sequence[Topic]) -> list[str]:
    """What is wrong with ``routes`` for a consumer of ``topics`` (empty when nothing is)."""
    problems = []
    for event_type in (t for topic in topics for t in types_on(topic)):
        if event_type not in routes:
            problems.append(
                f"{event_type.name} arrives on {event_type.topic.name} but has no route"
            )
    for event_type, route in routes.items():
        if event_type.topic not in topics:
            problems.append(f"{event_type.name} is routed but {event_type.topic.name} is not read")
        expected = _annotated_payload(route)
        if expected is not None and expected is not event_type.payload:
            problems.append(
                f"{event_type.name} carries {event_type.payload.__name__}, "
                f"its handler takes {expected.__name__}"
            )
    return problems


def _annotated_payload(route: Route[Any]) -> type | None:
    """The payload model a handler's annotation names (``Event[X]`` or ``Sequence[Event[X]]``)."""
    if isinstance(route, Ignored):
        return None
    function = route.handler if isinstance(route, Batched) else route
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # annotations that cannot be resolved are not checked
        return None
    parameters = list(inspect.signature(function).parameters)
    if len(parameters) < 2 or parameters[1] not in hints:
        return None
    hint = hints[parameters[1]]
    if isinstance(route, Batched) and get_args(hint):
        hint = get_args(hint)[0]
    if get_origin(hint) is Event and get_args(hint):
        found = get_args(hint)[0]
        # Event[Any]: a handler of several types (typing.Any is a class since 3.11)
        return found if isinstance(found, type) and found is not Any else None
    return None


class Router(Generic[C]):
    """Validates each consumed event and hands it to its route, with the service's context."""

    def __init__(
        self,
        routes: Routes[C],
        context: C,
        *,
        topics: Sequence[Topic] = (),
        pattern: str | None = None,
        catch_all: CatchAll[C] | None = None,
    ) -> None:
        """``topics`` are read by name; or ``pattern`` with a ``catch_all`` for every event."""
        problems = routing_problems(routes, topics)
        if problems:
            raise RoutingError("; ".join(problems))
        if pattern is not None and catch_all is None:
            raise RoutingError("a pattern subscription needs a catch-all route")
        self._routes = routes
        self._context = context
        self._catch_all = catch_all
        self.topics = [t.name for t in topics]
        self.pattern = pattern
        self.batches = catch_all is not None or any(isinstance(r, Batched) for r in routes.values())

    async def handle(self, envelope: Envelope, record: Record) -> None:
        """Handle one event (a batched route gets a run of one)."""
        await self.handle_batch([(envelope, record)])

    async def handle_batch(self, items: Sequence[tuple[Envelope, Record]]) -> None:
        """Handle a partition's poll in order, batched routes in runs of consecutive events."""
        if self._catch_all is not None:
            deliveries = [Delivered(envelope, record.topic) for envelope, record in items]
            await self._catch_all(self._context, deliveries)
            return
        for route, events in self._runs(items):
            if isinstance(route, Batched):
                size = route.size(self._context) if callable(route.size) else route.size
                step = size or len(events)
                for start in range(0, len(events), step):
                    await route.handler(self._context, events[start : start + step])
            elif not isinstance(route, Ignored):
                for event in events:
                    await route(self._context, event)

    def _runs(
        self, items: Sequence[tuple[Envelope, Record]]
    ) -> Iterator[tuple[Route[C], list[Event[Any]]]]:
        run: list[Event[Any]] = []
        current: Route[C] | None = None
        for envelope, record in items:
            event_type = EVENT_TYPES.get(envelope.type)
            route = self._routes.get(event_type) if event_type is not None else None
            if event_type is None or route is None:
                # Unknown here: payload() raises, and the consumer dead-letters the event.
                envelope.payload()
                raise RoutingError(f"no route for {envelope.type} from {record.topic}")
            if route is not current and run:
                assert current is not None
                yield current, run
                run = []
            current = route
            if not isinstance(route, Ignored):
                run.append(
                    Event(envelope, record.topic, event_type.payload.model_validate(envelope.data))
                )
        if current is not None and (run or isinstance(current, Ignored)):
            yield current, run


__all__ = [
    "IGNORED",
    "Batched",
    "Delivered",
    "Event",
    "Handler",
    "Ignored",
    "Route",
    "Router",
    "Routes",
    "RoutingError",
    "routing_problems",
]
