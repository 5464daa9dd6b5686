"""What QC keeps of other services' announcements: datasets, assets, ontology versions, jobs and
tasks (an export needs file names and sizes, judging needs a job's overlap and a gold task's
known answer).

Ingest's and clean's topics are read independently, so an asset's ``asset.ingested`` and
``asset.cleaned`` may arrive in either order: each upserts only its own columns. Every handler
claims its events in the inbox in the unit of work that applies them, so a redelivered event
changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from services.qc.context import Qc
from services.qc.repository import mirror as repo
from services.qc.use_cases.judging import evaluate_waiting
from shared.events import (
    AssetCleanedV1,
    AssetIngestedV1,
    DatasetCreatedV1,
    JobCreatedV1,
    OntologyVersionCreatedV1,
    TaskCreatedV1,
    pixels,
)
from shared.routing import Event, last_per_asset

AssetEvent = TypeVar("AssetEvent", Event[AssetIngestedV1], Event[AssetCleanedV1])


INGESTED_COLUMNS = ("dataset_id", "sha256", "filename", "media_type")
CLEANED_COLUMNS = ("width", "height")


async def remember_datasets(qc: Qc, events: Sequence[Event[DatasetCreatedV1]]) -> None:
    """Record datasets' slugs (a dataset version is asked for by slug)."""
    async with qc.units.begin() as uow:
        claimed = await uow.claim_all([e.envelope for e in events])
        fresh = [e.payload for e in events if e.id in claimed]
        await repo.remember_datasets(uow.session, [(d.dataset_id, d.slug) for d in fresh])


async def record_ingested(qc: Qc, events: Sequence[Event[AssetIngestedV1]]) -> None:
    """Record what assets are: content hash, file name, media type."""
    await _record_assets(
        qc,
        events,
        lambda p: {"sha256": p.sha256, "filename": p.filename, "media_type": p.media_type},
        INGESTED_COLUMNS,
    )


async def record_cleaned(qc: Qc, events: Sequence[Event[AssetCleanedV1]]) -> None:
    """Record cleaned assets' pixel sizes (what COCO and YOLO need)."""
    await _record_assets(
        qc,
        events,
        lambda p: {
            "width": pixels(p.metrics, "width"),
            "height": pixels(p.metrics, "height"),
        },
        CLEANED_COLUMNS,
    )


async def _record_assets(
    qc: Qc,
    events: Sequence[AssetEvent],
    facts: Callable[[Any], dict[str, Any]],
    columns: Sequence[str],
) -> None:
    """Claim the events and upsert each asset's ``facts`` (only ``columns`` on a known one)."""
    async with qc.units.begin() as uow:
        claimed = await uow.claim_all([e.envelope for e in events])
        fresh = last_per_asset([e for e in events if e.id in claimed])
        await repo.remember_datasets(
            uow.session, [(e.payload.dataset_id, e.payload.dataset_slug) for e in fresh]
        )
        await repo.upsert_assets(
            uow.session,
            [
                {"id": e.payload.asset_id, "dataset_id": e.payload.dataset_id, **facts(e.payload)}
                for e in fresh
            ],
            columns,
        )


async def remember_ontology_version(qc: Qc, event: Event[OntologyVersionCreatedV1]) -> None:
    """Record an ontology version's classes in order (export categories follow them)."""
    version = event.payload
    async with qc.units.begin() as uow:
        if await uow.claim(event.envelope):
            await repo.remember_ontology_version(
                uow.session, version.ontology_id, version.version, version.name, version.classes
            )


async def remember_job(qc: Qc, event: Event[JobCreatedV1]) -> None:
    """Record a job; assets answered before it was known here are evaluated now."""
    job = event.payload
    async with qc.units.begin() as uow:
        if not await uow.claim(event.envelope):
            return
        await repo.lock_job_arrival(uow.session, job.job_id)
        await repo.remember_job(
            uow.session,
            {
                "id": job.job_id,
                "name": job.name,
                "dataset_id": job.dataset_id,
                "ontology_id": job.ontology_id,
                "ontology_version": job.ontology_version,
                "overlap": job.overlap,
            },
        )
        known = await repo.job_by_id(uow.session, job.job_id)
        assert known is not None
        await evaluate_waiting(uow, qc.settings, known)


async def remember_tasks(qc: Qc, events: Sequence[Event[TaskCreatedV1]]) -> None:
    """Record tasks: asset, replica, and for a gold task its known answer."""
    async with qc.units.begin() as uow:
        claimed = await uow.claim_all([e.envelope for e in events])
        await repo.remember_tasks(
            uow.session,
            [
                {
                    "id": t.task_id,
                    "job_id": t.job_id,
                    "asset_id": t.asset_id,
                    "replica": t.replica,
                    "gold": t.gold,
                    "gold_shapes": t.gold_shapes,
                }
                for t in {e.payload.task_id: e.payload for e in events if e.id in claimed}.values()
            ],
        )
