"""The dashboard's Kafka consumer: every topic, into the projections.

Every type goes to one Batched route, :func:`~services.dashboard.use_cases.projecting.project`,
so a partition's whole poll is one unit of work (the types of a topic interleave: a route per
type would cut a poll into runs of a few events each, a transaction apiece). Which projection
each type feeds, or that it feeds none, is the table ``projecting.APPLIERS``.
"""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from services.dashboard.context import Dashboard
from services.dashboard.use_cases.projecting import PROJECTED, project
from shared.events import ALL_TOPICS
from shared.kafka import EventConsumer
from shared.routing import Batched, Router, Routes


def _size(dashboard: Dashboard) -> int:
    return dashboard.settings.batch_size


PROJECT = Batched(project, size=_size)
ROUTES: Routes[Dashboard] = dict.fromkeys(PROJECTED, PROJECT)


def build_consumer(dashboard: Dashboard, producer: AIOKafkaProducer) -> EventConsumer:
    """The consumer of every ``conveyor.*`` topic in the dashboard's group."""
    return EventConsumer(
        bootstrap_servers=dashboard.settings.kafka_bootstrap_servers,
        group_id=dashboard.settings.consumer_group,
        router=Router(ROUTES, dashboard, topics=ALL_TOPICS),
        producer=producer,
        # the read side: bigger polls are bigger transactions, and a span per event would
        # cost more than projecting it (the uploads' traces end in the services that act)
        max_poll_records=1000,
        span_per_event=False,
    )
