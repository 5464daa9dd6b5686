"""Landing-bucket drops: store notifications, the reconcile listing, a drop becoming an asset.

A file put under ``conveyor-landing/<dataset-slug>/`` becomes an asset of that dataset; the
store's notification (or a reconcile listing, for notifications missed) is recorded as an
``object.created`` event, and consuming that event does the ingestion.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from services.ingest import repository as repo
from services.ingest.context import Ingest
from services.ingest.domain import (
    FileRejected,
    LandingObject,
    dataset_of_landing_key,
    inspect_chunks,
)
from services.ingest.use_cases.registration import (
    AlreadyApplied,
    existing_asset,
    new_asset,
    register_asset,
)
from shared.events import DropRejectedV1, ObjectCreatedV1
from shared.routing import Event
from shared.storage import LANDING_BUCKET, RAW_BUCKET, content_address

log = logging.getLogger(__name__)

# Landing objects announced per unit of work (one outbox statement each) by a reconcile.
RECONCILE_BATCH = 500
# Seconds to wait before each retry of a failed reconcile.
RECONCILE_RETRY_DELAYS = (1, 2, 5, 10, 30, 60, 60, 60)


async def record_store_notification(ingest: Ingest, obj: LandingObject) -> bool:
    """Put a landing-bucket creation on ``conveyor.objectstore.events``; False if ignored."""
    if obj.bucket != LANDING_BUCKET:
        return False
    event_id = uuid.uuid5(
        uuid.NAMESPACE_URL, f"s3://{obj.bucket}/{obj.key}#{obj.etag}@{obj.version}"
    )
    async with ingest.units.begin() as uow:
        uow.emit(
            ObjectCreatedV1(
                bucket=obj.bucket, key=obj.key, size_bytes=obj.size_bytes, etag=obj.etag
            ),
            subject=f"s3://{obj.bucket}/{obj.key}",
            actor="objectstore",
            event_id=str(event_id),
        )
    return True


async def reconcile_landing(ingest: Ingest) -> int:
    """Announce every object still in the landing bucket (drops missed while we were down).

    Ingested drops are removed from the bucket, so what is left is either pending or was
    refused; deterministic event ids make a second reconcile of the same object a no-op.
    """
    objects = await ingest.store.list_keys(LANDING_BUCKET)
    for start in range(0, len(objects), RECONCILE_BATCH):
        async with ingest.units.begin() as uow:
            for obj in objects[start : start + RECONCILE_BATCH]:
                uow.emit(
                    ObjectCreatedV1(
                        bucket=obj.bucket,
                        key=obj.key,
                        size_bytes=obj.size,
                        etag=obj.etag,
                        detected_by="reconcile",
                    ),
                    subject=f"s3://{obj.bucket}/{obj.key}",
                    actor="objectstore",
                    event_id=str(
                        uuid.uuid5(
                            uuid.NAMESPACE_URL, f"reconcile:s3://{obj.bucket}/{obj.key}#{obj.etag}"
                        )
                    ),
                )
    if objects:
        log.info("reconcile: %d object(s) waiting in %s", len(objects), LANDING_BUCKET)
    return len(objects)


def request_reconcile(ingest: Ingest) -> None:
    """Ask for one listing of the landing bucket (a notification could not be recorded)."""
    ingest.reconcile_wanted.set()


async def reconcile_when_requested(ingest: Ingest) -> None:
    """Background task: run one reconcile per request, retrying until it succeeds."""
    while True:
        await ingest.reconcile_wanted.wait()
        ingest.reconcile_wanted.clear()
        for delay in RECONCILE_RETRY_DELAYS:
            try:
                await reconcile_landing(ingest)
                break
            except Exception as exc:
                log.warning("landing reconcile failed, retrying in %s s: %s", delay, exc)
                await asyncio.sleep(delay)


async def ingest_landing_object(ingest: Ingest, event: Event[ObjectCreatedV1]) -> None:
    """Turn a dropped object into an asset of the dataset its first folder names."""
    obj = event.payload
    slug = dataset_of_landing_key(obj.key)
    async with ingest.units.read() as session:
        dataset = await repo.dataset_by_slug(session, slug) if slug else None
    if dataset is None:
        reason = "unknown_dataset" if slug else "missing_dataset"
        message = (
            f"no dataset with slug {slug!r}; create it, then re-drop the file"
            if slug
            else "objects must be dropped under <dataset-slug>/"
        )
        await _reject_drop(ingest, event, reason, message)
        return
    info = await ingest.store.stat(obj.bucket, obj.key)
    if info is None:
        log.info("landing object %s is gone (already ingested or deleted)", obj.key)
        return
    if info.size > ingest.settings.max_upload_bytes:
        await _reject_drop(
            ingest, event, "too_large", f"{info.size} bytes is over the upload limit"
        )
        return
    try:
        inspected = await asyncio.to_thread(
            inspect_chunks,
            ingest.store.iter_chunks(obj.bucket, obj.key),
            ingest.settings.max_upload_bytes,
        )
    except FileRejected as exc:
        reason = {413: "too_large", 415: "unsupported_media_type"}.get(exc.status, exc.code)
        await _reject_drop(ingest, event, reason, exc.message)
        return
    if await existing_asset(ingest, dataset.id, inspected.sha256) is None:
        key = content_address(inspected.sha256)
        if await ingest.store.stat(RAW_BUCKET, key) is None:
            await ingest.store.copy(obj.bucket, obj.key, RAW_BUCKET, key)
        try:
            asset = new_asset(
                dataset,
                inspected,
                obj.key.rsplit("/", 1)[-1],
                uploaded_by="objectstore",
                source="objectstore",
                tags=[],
            )
            await register_asset(ingest, dataset, asset, envelope=event.envelope)
        except AlreadyApplied:
            return
    if ingest.settings.delete_landing_after_ingest:
        await ingest.store.remove(obj.bucket, obj.key)


async def _reject_drop(
    ingest: Ingest, event: Event[ObjectCreatedV1], reason: str, message: str
) -> None:
    obj = event.payload
    log.warning("drop %s/%s refused: %s", obj.bucket, obj.key, message)
    async with ingest.units.begin() as uow:
        if not await uow.claim(event.envelope):
            return
        uow.emit(
            DropRejectedV1(bucket=obj.bucket, key=obj.key, reason=reason, message=message),
            subject=f"s3://{obj.bucket}/{obj.key}",
            actor="objectstore",
        )
