"""Ingest's Kafka consumer: object-store events become assets."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer, ConsumerRecord

from services.ingest.handlers import Ingest
from shared.events import (
    CLEAN_EVENTS,
    FRAME_SAMPLED,
    OBJECT_CREATED,
    OBJECTSTORE_EVENTS,
    Envelope,
    FrameSampledV1,
    ObjectCreatedV1,
)
from shared.kafka import EventConsumer


def build_consumer(ingest: Ingest, producer: AIOKafkaProducer) -> EventConsumer:
    """Ingest's consumer: bucket drops, and video frames the clean service sampled."""

    async def handle(envelope: Envelope, _: ConsumerRecord[bytes, bytes]) -> None:
        if envelope.type == OBJECT_CREATED.name:
            payload = envelope.payload()
            assert isinstance(payload, ObjectCreatedV1)
            await ingest.ingest_landing_object(envelope, payload)
        elif envelope.type == FRAME_SAMPLED.name:
            frame = envelope.payload()
            assert isinstance(frame, FrameSampledV1)
            await ingest.register_frame(envelope, frame)

    return EventConsumer(
        bootstrap_servers=ingest.settings.kafka_bootstrap_servers,
        group_id=ingest.settings.consumer_group,
        handle=handle,
        producer=producer,
        topics=[OBJECTSTORE_EVENTS.name, CLEAN_EVENTS.name],
    )
