"""Labeling-dispatch's Kafka consumer: datasets and assets as announced, cleaned ones into jobs."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from services.labeling_dispatch.context import Labeling
from shared.events import CLEAN_EVENTS, INGEST_EVENTS, QC_EVENTS, types_on
from shared.kafka import EventConsumer
from shared.routing import IGNORED, Router, Routes

TOPICS = [INGEST_EVENTS, CLEAN_EVENTS, QC_EVENTS]

ROUTES: Routes[Labeling] = {t: IGNORED for topic in TOPICS for t in types_on(topic)}


def build_consumer(labeling: Labeling, producer: AIOKafkaProducer) -> EventConsumer:
    """The consumer of ingest's, clean's and QC's topics in labeling-dispatch's group."""
    return EventConsumer(
        bootstrap_servers=labeling.settings.kafka_bootstrap_servers,
        group_id=labeling.settings.consumer_group,
        router=Router(ROUTES, labeling, topics=TOPICS),
        producer=producer,
    )
