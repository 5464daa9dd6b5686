"""Clean's Kafka consumer: every ingested asset gets checked."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from services.clean.context import Clean
from services.clean.use_cases import cleaning, datasets
from shared.events import (
    API_KEY_CREATED,
    API_KEY_REVOKED,
    API_KEY_SCOPE_CHANGED,
    ASSET_INGESTED,
    DATASET_CREATED,
    DROP_REJECTED,
    INGEST_EVENTS,
)
from shared.kafka import EventConsumer
from shared.routing import IGNORED, Batched, Router, Routes

TOPICS = [INGEST_EVENTS]

ROUTES: Routes[Clean] = {
    ASSET_INGESTED: Batched(cleaning.clean_assets, size=lambda clean: clean.settings.batch_size),
    DATASET_CREATED: datasets.remember_dataset,
    DROP_REJECTED: IGNORED,
    API_KEY_CREATED: IGNORED,
    API_KEY_REVOKED: IGNORED,
    API_KEY_SCOPE_CHANGED: IGNORED,
}


def build_consumer(clean: Clean, producer: AIOKafkaProducer) -> EventConsumer:
    """The consumer of ``conveyor.ingest.events`` in clean's group."""
    return EventConsumer(
        bootstrap_servers=clean.settings.kafka_bootstrap_servers,
        group_id=clean.settings.consumer_group,
        router=Router(ROUTES, clean, topics=TOPICS),
        producer=producer,
    )
