"""Audit's Kafka consumer: every ``conveyor.*`` topic, dead letters included."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from services.audit.handlers import Audit
from services.audit.settings import AuditSettings
from shared.events import ALL_TOPICS_PATTERN
from shared.kafka import EventConsumer
from shared.routing import Delivered, Router


async def append(audit: Audit, deliveries: Sequence[Delivered]) -> None:
    """Every event, whatever its type (even one newer than this code), joins the chain."""
    await audit.append([(d.envelope, d.topic) for d in deliveries])


def build_consumer(
    audit: Audit, settings: AuditSettings, producer: AIOKafkaProducer
) -> EventConsumer:
    """The consumer that appends every event to the chain."""
    return EventConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.consumer_group,
        router=Router({}, audit, pattern=ALL_TOPICS_PATTERN, catch_all=append),
        producer=producer,
    )
