"""The dashboard's Kafka consumer: every topic, into the projections."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from services.dashboard.context import Dashboard
from services.dashboard.use_cases import projecting as p
from shared.events import (
    ALL_TOPICS,
    ANNOTATION_ACCEPTED,
    ANNOTATION_REFUSED,
    ANNOTATION_REJECTED,
    ANNOTATION_REWORK_REQUESTED,
    ANNOTATION_SUBMITTED,
    ANNOTATION_WITHDRAWN,
    API_KEY_CREATED,
    API_KEY_REVOKED,
    API_KEY_SCOPE_CHANGED,
    ASSET_CLEANED,
    ASSET_INGESTED,
    ASSET_REJECTED,
    CONSENSUS_COMPUTED,
    DATASET_CREATED,
    DATASET_VERSION_CREATED,
    DEAD_LETTER,
    DELIVERY_FAILED,
    DROP_REJECTED,
    FRAME_SAMPLED,
    GOLD_SCORED,
    JOB_CREATED,
    JOB_STATE_CHANGED,
    OBJECT_CREATED,
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


def _size(dashboard: Dashboard) -> int:
    return dashboard.settings.batch_size


ROUTES: Routes[Dashboard] = {
    DATASET_CREATED: Batched(p.project_datasets, size=_size),
    ASSET_INGESTED: Batched(p.project_uploads, size=_size),
    DROP_REJECTED: Batched(p.project_drops, size=_size),
    ASSET_CLEANED: Batched(p.project_cleaned, size=_size),
    ASSET_REJECTED: Batched(p.project_rejected, size=_size),
    VENDOR_CREATED: Batched(p.project_vendors, size=_size),
    JOB_CREATED: Batched(p.project_jobs, size=_size),
    JOB_STATE_CHANGED: Batched(p.project_job_states, size=_size),
    TASK_CREATED: Batched(p.project_tasks, size=_size),
    TASK_DISPATCHED: Batched(p.project_dispatches, size=_size),
    TASK_EXPIRED: Batched(p.project_expiries, size=_size),
    TASK_REWORK_SENT: Batched(p.project_rework_sent, size=_size),
    ANNOTATION_SUBMITTED: Batched(p.project_submissions, size=_size),
    ANNOTATION_ACCEPTED: Batched(p.project_accepted, size=_size),
    ANNOTATION_REJECTED: Batched(p.project_qc_rejected, size=_size),
    ANNOTATION_REWORK_REQUESTED: Batched(p.project_rework, size=_size),
    DATASET_VERSION_CREATED: Batched(p.project_versions, size=_size),
    DEAD_LETTER: Batched(p.project_dead_letters, size=_size),
    # the landing notification is followed by an asset.ingested or a drop_rejected
    OBJECT_CREATED: IGNORED,
    # a sampled frame arrives again as an asset.ingested image of its own
    FRAME_SAMPLED: IGNORED,
    API_KEY_CREATED: IGNORED,
    API_KEY_REVOKED: IGNORED,
    API_KEY_SCOPE_CHANGED: IGNORED,
    ONTOLOGY_VERSION_CREATED: IGNORED,
    VENDOR_CHANGED: IGNORED,
    DELIVERY_FAILED: IGNORED,
    ANNOTATION_REFUSED: IGNORED,
    ANNOTATION_WITHDRAWN: IGNORED,
    # vendor quality comes from QC's scorecards API, which already sums these
    CONSENSUS_COMPUTED: IGNORED,
    GOLD_SCORED: IGNORED,
}


def build_consumer(dashboard: Dashboard, producer: AIOKafkaProducer) -> EventConsumer:
    """The consumer of every ``conveyor.*`` topic in the dashboard's group."""
    return EventConsumer(
        bootstrap_servers=dashboard.settings.kafka_bootstrap_servers,
        group_id=dashboard.settings.consumer_group,
        router=Router(ROUTES, dashboard, topics=ALL_TOPICS),
        producer=producer,
    )
