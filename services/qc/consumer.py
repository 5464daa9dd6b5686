"""QC's Kafka consumer: what ingest, clean and labeling-dispatch announce."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from services.qc.context import Qc
from shared.events import CLEAN_EVENTS, INGEST_EVENTS, LABELING_EVENTS, types_on
from shared.kafka import EventConsumer
from shared.routing import IGNORED, Router, Routes

TOPICS = [INGEST_EVENTS, CLEAN_EVENTS, LABELING_EVENTS]

ROUTES: Routes[Qc] = {
    **{t: IGNORED for topic in TOPICS for t in types_on(topic)},
}


def build_consumer(qc: Qc, producer: AIOKafkaProducer) -> EventConsumer:
    """The consumer of ingest's, clean's and labeling-dispatch's topics in QC's group."""
    return EventConsumer(
        bootstrap_servers=qc.settings.kafka_bootstrap_servers,
        group_id=qc.settings.consumer_group,
        router=Router(ROUTES, qc, topics=TOPICS),
        producer=producer,
    )
