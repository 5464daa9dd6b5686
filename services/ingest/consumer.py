"""Ingest's Kafka consumer: object-store drops become assets; sampled video frames become assets."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from services.ingest.handlers import Ingest
from shared.events import (
    ASSET_CLEANED,
    ASSET_REJECTED,
    CLEAN_EVENTS,
    FRAME_SAMPLED,
    OBJECT_CREATED,
    OBJECTSTORE_EVENTS,
    FrameSampledV1,
    ObjectCreatedV1,
)
from shared.kafka import EventConsumer
from shared.routing import IGNORED, Event, Router, Routes

TOPICS = [OBJECTSTORE_EVENTS, CLEAN_EVENTS]


async def ingest_landing_object(ingest: Ingest, event: Event[ObjectCreatedV1]) -> None:
    await ingest.ingest_landing_object(event.envelope, event.payload)


async def register_frame(ingest: Ingest, event: Event[FrameSampledV1]) -> None:
    await ingest.register_frame(event.envelope, event.payload)


ROUTES: Routes[Ingest] = {
    OBJECT_CREATED: ingest_landing_object,
    FRAME_SAMPLED: register_frame,
    ASSET_CLEANED: IGNORED,
    ASSET_REJECTED: IGNORED,
}


def build_consumer(ingest: Ingest, producer: AIOKafkaProducer) -> EventConsumer:
    """Ingest's consumer: bucket drops, and video frames the clean service sampled."""
    return EventConsumer(
        bootstrap_servers=ingest.settings.kafka_bootstrap_servers,
        group_id=ingest.settings.consumer_group,
        router=Router(ROUTES, ingest, topics=TOPICS),
        producer=producer,
    )
