"""What labeling keeps of ingest's and clean's announcements, and cleaned images into jobs.

Ingest's and clean's topics are read independently, so an asset's ``asset.ingested`` and its
verdict may arrive in either order: both upsert, neither overwrites what the other wrote.
Each run of events is one unit of work that claims the events in the inbox, so a redelivered
event changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TypeVar

from services.labeling_dispatch.context import Labeling
from services.labeling_dispatch.repository import assets as repo
from services.labeling_dispatch.use_cases.enqueueing import enqueue_into_jobs
from shared.events import (
    AssetCleanedV1,
    AssetIngestedV1,
    AssetRejectedV1,
    DatasetCreatedV1,
    pixels,
)
from shared.routing import Event, last_per_asset
from shared.uow import UnitOfWork

ACTOR = "labeling-dispatch"


async def remember_datasets(labeling: Labeling, events: Sequence[Event[DatasetCreatedV1]]) -> None:
    """Record datasets' slugs, so people may name a job's dataset by slug."""
    async with labeling.units.begin() as uow:
        claimed = await uow.claim_all([e.envelope for e in events])
        fresh = [e.payload for e in events if e.id in claimed]
        await repo.remember_datasets(uow.session, [(d.dataset_id, d.slug) for d in fresh])
    labeling.known_datasets |= {d.dataset_id for d in fresh}


async def record_ingested(labeling: Labeling, events: Sequence[Event[AssetIngestedV1]]) -> None:
    """Record where new assets are, what they are, and the trace of their upload."""
    async with labeling.units.begin() as uow:
        claimed = await uow.claim_all([e.envelope for e in events])
        fresh = [e for e in events if e.id in claimed]
        await repo.remember_datasets(
            uow.session, sorted({(e.payload.dataset_id, e.payload.dataset_slug) for e in fresh})
        )
        await repo.upsert_ingested(
            uow.session,
            [
                {
                    "id": e.payload.asset_id,
                    "dataset_id": e.payload.dataset_id,
                    "sha256": e.payload.sha256,
                    "media_type": e.payload.media_type,
                    "filename": e.payload.filename,
                    "traceparent": e.envelope.traceparent,
                }
                for e in last_per_asset(fresh)
            ],
        )


async def record_cleaned(labeling: Labeling, events: Sequence[Event[AssetCleanedV1]]) -> None:
    """Mark assets cleaned with their size, and queue the images in their datasets' jobs."""
    async with labeling.units.begin() as uow:
        asset_ids = await _record_verdicts(uow, events, "cleaned")
        cleaned = await repo.assets_by_ids(uow.session, asset_ids)
        queued = await enqueue_into_jobs(uow, cleaned, actor=ACTOR)
    if queued:
        labeling.wake_dispatcher.set()


async def record_rejected(labeling: Labeling, events: Sequence[Event[AssetRejectedV1]]) -> None:
    """Mark assets rejected: they never become tasks."""
    async with labeling.units.begin() as uow:
        await _record_verdicts(uow, events, "rejected")


VerdictEvent = TypeVar("VerdictEvent", Event[AssetCleanedV1], Event[AssetRejectedV1])


async def _record_verdicts(
    uow: UnitOfWork, events: Sequence[VerdictEvent], state: str
) -> list[uuid.UUID]:
    """Claim the events and store their verdicts; the ids of the assets they were about."""
    claimed = await uow.claim_all([e.envelope for e in events])
    fresh = last_per_asset([e for e in events if e.id in claimed])
    for ident in sorted({e.payload.dataset_id for e in fresh}):  # one lock order
        await repo.lock_dataset(uow.session, ident)
    await repo.upsert_verdicts(
        uow.session,
        [
            {
                "id": e.payload.asset_id,
                "dataset_id": e.payload.dataset_id,
                "media_type": e.payload.media_type,
                "state": state,
                "width": pixels(e.payload.metrics, "width"),
                "height": pixels(e.payload.metrics, "height"),
                "cleaned_at": e.envelope.time if state == "cleaned" else None,
            }
            for e in fresh
        ],
    )
    return [e.payload.asset_id for e in fresh]
