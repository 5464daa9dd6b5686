"""Ingest's Kafka consumer: object-store drops become assets; sampled video frames become assets."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from services.ingest.context import Ingest
from services.ingest.use_cases import drops, frames
from shared.events import (
    ASSET_CLEANED,
    ASSET_REJECTED,
    CLEAN_EVENTS,
    FRAME_SAMPLED,
    OBJECT_CREATED,
    OBJECTSTORE_EVENTS,
)
from shared.kafka import EventConsumer
from shared.routing import IGNORED, Router, Routes

TOPICS = [OBJECTSTORE_EVENTS, CLEAN_EVENTS]

ROUTES: Routes[Ingest] = {
    OBJECT_CREATED: drops.ingest_landing_object,
    FRAME_SAMPLED: frames.register_frame,
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
