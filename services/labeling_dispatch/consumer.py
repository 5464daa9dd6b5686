"""Labeling-dispatch's Kafka consumer: datasets and assets as announced, cleaned ones into jobs,
QC's rework requests back into the queue."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from services.labeling_dispatch.context import Labeling
from services.labeling_dispatch.use_cases.mirror import (
    record_cleaned,
    record_ingested,
    record_rejected,
    remember_datasets,
)
from services.labeling_dispatch.use_cases.rework import send_back_for_rework
from shared.events import (
    ANNOTATION_REWORK_REQUESTED,
    API_KEY_CREATED,
    API_KEY_REVOKED,
    API_KEY_SCOPE_CHANGED,
    ASSET_CLEANED,
    ASSET_INGESTED,
    ASSET_REJECTED,
    CLEAN_EVENTS,
    DATASET_CREATED,
    DROP_REJECTED,
    FRAME_SAMPLED,
    INGEST_EVENTS,
    QC_EVENTS,
    types_on,
)
from shared.kafka import EventConsumer
from shared.routing import IGNORED, Batched, Router, Routes

TOPICS = [INGEST_EVENTS, CLEAN_EVENTS, QC_EVENTS]

# A burst of uploads or verdicts is one unit of work per run of at most this many events.
RUN_SIZE = 200

ROUTES: Routes[Labeling] = {
    DATASET_CREATED: Batched(remember_datasets, size=RUN_SIZE),
    ASSET_INGESTED: Batched(record_ingested, size=RUN_SIZE),
    ASSET_CLEANED: Batched(record_cleaned, size=RUN_SIZE),
    ASSET_REJECTED: Batched(record_rejected, size=RUN_SIZE),
    # a sampled frame arrives again as an asset.ingested image of its own
    FRAME_SAMPLED: IGNORED,
    DROP_REJECTED: IGNORED,
    API_KEY_CREATED: IGNORED,
    API_KEY_REVOKED: IGNORED,  # the revocation listener handles it, outside the group
    API_KEY_SCOPE_CHANGED: IGNORED,
    # of QC's decisions only rework concerns dispatch: accepted and rejected answers stay stored
    **{t: IGNORED for t in types_on(QC_EVENTS)},
    ANNOTATION_REWORK_REQUESTED: send_back_for_rework,
}


def build_consumer(labeling: Labeling, producer: AIOKafkaProducer) -> EventConsumer:
    """The consumer of ingest's, clean's and QC's topics in labeling-dispatch's group."""
    return EventConsumer(
        bootstrap_servers=labeling.settings.kafka_bootstrap_servers,
        group_id=labeling.settings.consumer_group,
        router=Router(ROUTES, labeling, topics=TOPICS),
        producer=producer,
    )
