"""QC's Kafka consumer: what ingest, clean and labeling-dispatch announce."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from services.qc.context import Qc
from services.qc.use_cases.judging import judge_submitted, set_aside_reworked, withdraw_answer
from services.qc.use_cases.mirror import (
    record_cleaned,
    record_ingested,
    remember_datasets,
    remember_job,
    remember_ontology_version,
    remember_tasks,
)
from services.qc.use_cases.scorecards import record_expired
from shared.events import (
    ANNOTATION_REFUSED,
    ANNOTATION_SUBMITTED,
    ANNOTATION_WITHDRAWN,
    API_KEY_CREATED,
    API_KEY_REVOKED,
    API_KEY_SCOPE_CHANGED,
    ASSET_CLEANED,
    ASSET_INGESTED,
    ASSET_REJECTED,
    CLEAN_EVENTS,
    DATASET_CREATED,
    DELIVERY_FAILED,
    DROP_REJECTED,
    FRAME_SAMPLED,
    INGEST_EVENTS,
    JOB_CREATED,
    JOB_STATE_CHANGED,
    LABELING_EVENTS,
    ONTOLOGY_VERSION_CREATED,
    TASK_CREATED,
    TASK_DISPATCHED,
    TASK_EXPIRED,
    TASK_REWORK_SENT,
    VENDOR_CHANGED,
    VENDOR_CREATED,
)
from shared.kafka import EventConsumer
from shared.routing import IGNORED, Batched, Router, Routes

TOPICS = [INGEST_EVENTS, CLEAN_EVENTS, LABELING_EVENTS]

# A burst of uploads, verdicts or new tasks is one unit of work per run of at most this many.
RUN_SIZE = 200
# Answers judged in one unit of work, at most (each takes its asset's review lock until the
# run commits).
JUDGED_RUN = 50

ROUTES: Routes[Qc] = {
    DATASET_CREATED: Batched(remember_datasets, size=RUN_SIZE),
    ASSET_INGESTED: Batched(record_ingested, size=RUN_SIZE),
    ASSET_CLEANED: Batched(record_cleaned, size=RUN_SIZE),
    ONTOLOGY_VERSION_CREATED: remember_ontology_version,
    JOB_CREATED: remember_job,
    TASK_CREATED: Batched(remember_tasks, size=RUN_SIZE),
    ANNOTATION_SUBMITTED: Batched(judge_submitted, size=JUDGED_RUN),
    ANNOTATION_WITHDRAWN: withdraw_answer,
    TASK_REWORK_SENT: set_aside_reworked,
    # a rejected asset never becomes a task, so QC never hears of it again
    ASSET_REJECTED: IGNORED,
    FRAME_SAMPLED: IGNORED,  # a sampled frame arrives again as an asset.ingested image
    DROP_REJECTED: IGNORED,
    API_KEY_CREATED: IGNORED,
    API_KEY_REVOKED: IGNORED,  # the revocation listener handles it, outside the group
    API_KEY_SCOPE_CHANGED: IGNORED,
    VENDOR_CREATED: IGNORED,
    VENDOR_CHANGED: IGNORED,
    JOB_STATE_CHANGED: IGNORED,
    TASK_DISPATCHED: IGNORED,
    TASK_EXPIRED: Batched(record_expired, size=RUN_SIZE),
    DELIVERY_FAILED: IGNORED,
    ANNOTATION_REFUSED: IGNORED,  # a refused answer changed nothing
}


def build_consumer(qc: Qc, producer: AIOKafkaProducer) -> EventConsumer:
    """The consumer of ingest's, clean's and labeling-dispatch's topics in QC's group."""
    return EventConsumer(
        bootstrap_servers=qc.settings.kafka_bootstrap_servers,
        group_id=qc.settings.consumer_group,
        router=Router(ROUTES, qc, topics=TOPICS),
        producer=producer,
    )
