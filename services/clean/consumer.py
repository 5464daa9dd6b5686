"""Clean's Kafka consumer: every ingested asset gets checked."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer, ConsumerRecord

from services.clean.handlers import Clean
from shared.events import (
    ASSET_INGESTED,
    DATASET_CREATED,
    INGEST_EVENTS,
    AssetIngestedV1,
    DatasetCreatedV1,
    Envelope,
)
from shared.kafka import EventConsumer


def build_consumer(clean: Clean, producer: AIOKafkaProducer) -> EventConsumer:
    """The consumer of ``conveyor.ingest.events`` in clean's group."""

    async def handle(envelope: Envelope, _: ConsumerRecord[bytes, bytes]) -> None:
        if envelope.type == ASSET_INGESTED.name:
            asset = envelope.payload()
            assert isinstance(asset, AssetIngestedV1)
            await clean.clean_asset(envelope, asset)
        elif envelope.type == DATASET_CREATED.name:
            dataset = envelope.payload()
            assert isinstance(dataset, DatasetCreatedV1)
            await clean.remember_dataset(dataset)

    return EventConsumer(
        bootstrap_servers=clean.settings.kafka_bootstrap_servers,
        group_id=clean.settings.consumer_group,
        handle=handle,
        producer=producer,
        topics=[INGEST_EVENTS.name],
    )
