"""Ingest's Kafka consumer: object-store events become assets."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer, ConsumerRecord

from services.ingest.handlers import Ingest
from shared.events import OBJECT_CREATED, OBJECTSTORE_EVENTS, Envelope, ObjectCreatedV1
from shared.kafka import EventConsumer


def build_consumer(ingest: Ingest, producer: AIOKafkaProducer) -> EventConsumer:
    """The consumer of ``conveyor.objectstore.events`` in ingest's group."""

    async def handle(envelope: Envelope, _: ConsumerRecord[bytes, bytes]) -> None:
        if envelope.type == OBJECT_CREATED.name:
            payload = envelope.payload()
            assert isinstance(payload, ObjectCreatedV1)
            await ingest.ingest_landing_object(envelope, payload)

    return EventConsumer(
        bootstrap_servers=ingest.settings.kafka_bootstrap_servers,
        group_id=ingest.settings.consumer_group,
        handle=handle,
        producer=producer,
        topics=[OBJECTSTORE_EVENTS.name],
    )
