"""Clean's Kafka consumer: every ingested asset gets checked."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from services.clean.handlers import Clean
from shared.events import (
    API_KEY_CREATED,
    API_KEY_REVOKED,
    ASSET_INGESTED,
    DATASET_CREATED,
    DROP_REJECTED,
    INGEST_EVENTS,
    AssetIngestedV1,
    DatasetCreatedV1,
)
from shared.kafka import EventConsumer
from shared.routing import IGNORED, Batched, Event, Router, Routes

TOPICS = [INGEST_EVENTS]


async def clean_assets(clean: Clean, events: Sequence[Event[AssetIngestedV1]]) -> None:
    await clean.clean_assets([(e.envelope, e.payload) for e in events])


async def remember_dataset(clean: Clean, event: Event[DatasetCreatedV1]) -> None:
    await clean.remember_dataset(event.payload)


ROUTES: Routes[Clean] = {
    ASSET_INGESTED: Batched(clean_assets),
    DATASET_CREATED: remember_dataset,
    DROP_REJECTED: IGNORED,
    API_KEY_CREATED: IGNORED,
    API_KEY_REVOKED: IGNORED,
}


def build_consumer(clean: Clean, producer: AIOKafkaProducer) -> EventConsumer:
    """The consumer of ``conveyor.ingest.events`` in clean's group."""
    return EventConsumer(
        bootstrap_servers=clean.settings.kafka_bootstrap_servers,
        group_id=clean.settings.consumer_group,
        router=Router(ROUTES, clean, topics=TOPICS),
        producer=producer,
    )
