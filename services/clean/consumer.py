"""Clean's Kafka consumer: every ingested asset gets checked."""

from __future__ import annotations

from typing import TypeAlias

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

Record: TypeAlias = ConsumerRecord[bytes, bytes]


def build_consumer(clean: Clean, producer: AIOKafkaProducer) -> EventConsumer:
    """The consumer of ``conveyor.ingest.events`` in clean's group.

    A partition's poll is handled as a batch, in order: runs of new assets are judged together
    (see :meth:`Clean.clean_assets`). Should a batch fail, the consumer retries its events one
    by one, so a poison event ends in the dead-letter topic alone.
    """

    async def handle(envelope: Envelope, record: Record) -> None:
        await handle_batch([(envelope, record)])

    async def handle_batch(items: list[tuple[Envelope, Record]]) -> None:
        run: list[tuple[Envelope, AssetIngestedV1]] = []
        for envelope, _ in items:
            if envelope.type == ASSET_INGESTED.name:
                asset = envelope.payload()
                assert isinstance(asset, AssetIngestedV1)
                run.append((envelope, asset))
            elif envelope.type == DATASET_CREATED.name:
                await clean.clean_assets(run)
                run = []
                dataset = envelope.payload()
                assert isinstance(dataset, DatasetCreatedV1)
                await clean.remember_dataset(dataset)
        await clean.clean_assets(run)

    return EventConsumer(
        bootstrap_servers=clean.settings.kafka_bootstrap_servers,
        group_id=clean.settings.consumer_group,
        handle=handle,
        handle_batch=handle_batch,
        producer=producer,
        topics=[INGEST_EVENTS.name],
    )
