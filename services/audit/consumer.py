"""Audit's Kafka consumer: every ``conveyor.*`` topic, dead letters included."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from services.audit.context import Audit
from services.audit.settings import AuditSettings
from services.audit.use_cases.appending import append_events
from shared.events import ALL_TOPICS_PATTERN
from shared.kafka import EventConsumer
from shared.routing import Router

# Audit is a log, not a step of the pipeline: a record 0.1 s later costs nothing, and a busy
# stream then comes in batches of tens of events, one transaction each, instead of a handful.
LINGER_MS = 100


def build_consumer(
    audit: Audit, settings: AuditSettings, producer: AIOKafkaProducer
) -> EventConsumer:
    """The consumer that appends every event, whatever its type, to the chain.

    No routes table: audit records every type, even ones newer than this code, so a
    pattern subscription hands each poll to one catch-all use case, all partitions at once
    (one transaction per poll: the chain is one line, appended under one lock).
    """
    return EventConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.consumer_group,
        router=Router({}, audit, pattern=ALL_TOPICS_PATTERN, catch_all=append_events),
        producer=producer,
        whole_poll=True,
        linger_ms=LINGER_MS,
    )
