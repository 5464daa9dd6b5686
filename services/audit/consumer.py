"""Audit's Kafka consumer: every ``conveyor.*`` topic, dead letters included."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer, ConsumerRecord

from services.audit.handlers import Audit
from services.audit.settings import AuditSettings
from shared.events import ALL_TOPICS_PATTERN, Envelope
from shared.kafka import EventConsumer


def build_consumer(
    audit: Audit, settings: AuditSettings, producer: AIOKafkaProducer
) -> EventConsumer:
    """The consumer that appends every event to the chain."""

    async def handle(envelope: Envelope, record: ConsumerRecord[bytes, bytes]) -> None:
        await audit.append([(envelope, record.topic)])

    async def handle_batch(items: list[tuple[Envelope, ConsumerRecord[bytes, bytes]]]) -> None:
        await audit.append([(envelope, record.topic) for envelope, record in items])

    return EventConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.consumer_group,
        handle=handle,
        handle_batch=handle_batch,
        producer=producer,
        pattern=ALL_TOPICS_PATTERN,
    )
