"""The dispatcher: lapsed leases back to the queue, queued tasks into vendor deliveries, due
deliveries sent.

Each round is a few short transactions; tries go out in the background (at most
``delivery_concurrency`` at once), so a slow vendor never holds up the rounds. It wakes on
``labeling.wake_dispatcher`` (new tasks, a try finished) or every interval. Everything it works
from is in Postgres, so a restarted service (or a second copy) resumes where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from services.labeling_dispatch.context import Labeling
from services.labeling_dispatch.domain.batches import (
    BatchItem,
    JobBrief,
    delivery_body,
    one_replica_per_asset,
)
from services.labeling_dispatch.domain.tasks import TaskState, task_transition
from services.labeling_dispatch.models import Delivery, Task
from services.labeling_dispatch.repository import dispatch as repo
from services.labeling_dispatch.use_cases.deliveries import (
    EDGE_KINDS,
    Claimed,
    claim_due,
    expire_leases,
    try_delivery,
)
from shared.storage import RAW_BUCKET, content_address
from shared.uow import UnitOfWork

log = logging.getLogger(__name__)

# Batches made for one vendor in one round before the others get their turn.
BATCHES_PER_ROUND = 8


async def run_dispatcher(labeling: Labeling) -> None:
    """Run until cancelled, waking on ``labeling.wake_dispatcher`` or every interval."""
    sending: set[asyncio.Task[None]] = set()
    try:
        while True:
            labeling.wake_dispatcher.clear()
            try:
                await dispatch_round(labeling, sending)
            except Exception:
                # a database hiccup must not stop dispatching: the next round tries again
                log.exception("dispatch round failed")
            # Under load every new task and every finished try wakes the dispatcher; rounds at
            # most every min_round_gap let work pile up a little, so one round (a handful of
            # transactions) serves many tasks instead of one.
            await asyncio.sleep(labeling.settings.dispatch_min_round_gap_seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    labeling.wake_dispatcher.wait(), labeling.settings.dispatch_interval_seconds
                )
    finally:
        for task in sending:
            task.cancel()
        await asyncio.gather(*sending, return_exceptions=True)


async def dispatch_round(labeling: Labeling, sending: set[asyncio.Task[None]]) -> None:
    """One round: expire, batch, start the tries there is room for."""
    expired = await expire_leases(labeling)
    if expired:
        log.info("%d task leases expired", expired)
    await fill_batches(labeling)
    room = labeling.settings.delivery_concurrency - len(sending)
    if room <= 0:
        return
    for claim in await claim_due(labeling, room):
        task = asyncio.create_task(
            _send(labeling, claim), name=f"delivery {claim.outbound.delivery_id}"
        )
        sending.add(task)
        task.add_done_callback(sending.discard)


async def _send(labeling: Labeling, claim: Claimed) -> None:
    """One try in the background; a finished try makes room, so the dispatcher is woken."""
    try:
        status = await try_delivery(labeling, claim)
        log.debug("delivery %s: %s", claim.outbound.delivery_id, status)
    except Exception:
        # the claim lapses and the delivery comes due again
        log.exception("delivery %s: recording the try failed", claim.outbound.delivery_id)
    finally:
        labeling.wake_dispatcher.set()


async def fill_batches(labeling: Labeling) -> int:
    """Queued tasks into deliveries for every vendor with room; the number of batches made."""
    async with labeling.units.read() as session:
        if not await repo.any_queued(session):
            return 0
        # a vendor that failed a delivery is sent nothing new for the longest retry delay
        pause = timedelta(seconds=labeling.settings.max_retry_delay_seconds)
        failed_since = datetime.now(UTC) - pause
        vendor_ids = await repo.vendors_with_room(session, EDGE_KINDS, failed_since)
    made = 0
    for vendor_id in vendor_ids:
        for _ in range(BATCHES_PER_ROUND):
            if not await _make_batch(labeling, vendor_id):
                break
            made += 1
        else:
            labeling.wake_dispatcher.set()  # more may wait: another round soon
    return made


async def _make_batch(labeling: Labeling, vendor_id: uuid.UUID) -> bool:
    """One delivery of the vendor's best queued tasks (one job), in one unit of work."""
    async with labeling.units.begin() as uow:
        locked = await repo.lock_vendor(uow.session, vendor_id)
        if locked is None:
            return False
        vendor, free = locked
        room = min(vendor.batch_size, free)
        if room <= 0:
            return False
        job_id = await repo.next_job_for(uow.session, vendor_id)
        if job_id is None:
            return False
        tasks = await repo.take_tasks(uow.session, vendor_id, job_id, room)
        several = len((await repo.job_vendors(uow.session, [job_id]))[job_id]) > 1
        keep = set(one_replica_per_asset([(t.id, t.asset_id) for t in tasks], several))
        tasks = [t for t in tasks if t.id in keep]
        for task in tasks:
            task_transition(task.state, TaskState.assigned)
        if not tasks:
            return False
        delivery_id = uuid.uuid4()
        items = await _batch_items(uow, tasks)
        body = delivery_body(
            delivery_id, vendor_id, await _job_brief(uow, job_id), items, _image_link(labeling)
        )
        now = datetime.now(UTC)
        assets = await repo.assets_by_ids(uow.session, [tasks[0].asset_id])
        await repo.insert_delivery(
            uow.session,
            Delivery(
                id=delivery_id,
                vendor_id=vendor_id,
                job_id=job_id,
                task_ids=[t.id for t in tasks],
                body=body,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                traceparent=assets[tasks[0].asset_id].traceparent,
                created_at=now,
            ),
        )
        await repo.assign_tasks(uow.session, tasks, vendor_id, delivery_id)
    return True


async def _job_brief(uow: UnitOfWork, job_id: uuid.UUID) -> JobBrief:
    job = await repo.job_by_id(uow.session, job_id)
    assert job is not None  # the task rows reference it
    spec = await repo.ontology_spec(uow.session, job.ontology_id, job.ontology_version)
    return JobBrief(
        job.id,
        job.name,
        job.ontology_id,
        job.ontology_version,
        list(spec.get("classes", [])),
        job.lease_seconds,
    )


async def _batch_items(uow: UnitOfWork, tasks: list[Task]) -> list[BatchItem]:
    asset_ids = [t.asset_id for t in tasks]
    assets = await repo.assets_by_ids(uow.session, asset_ids)
    predictions = await repo.latest_predictions(uow.session, asset_ids)
    items = []
    for task in tasks:
        asset = assets[task.asset_id]
        assert asset.sha256 is not None  # only tasks whose bytes are known are taken
        items.append(
            BatchItem(
                task.id,
                task.asset_id,
                task.replica,
                asset.sha256,
                asset.width,
                asset.height,
                asset.media_type,
                predictions.get(task.asset_id, []),
                task.rework_comment,
            )
        )
    return items


def _image_link(labeling: Labeling) -> Callable[[str], str]:
    lifetime = timedelta(seconds=labeling.settings.image_link_seconds)

    def link(sha256: str) -> str:
        return labeling.store.presigned_get(RAW_BUCKET, content_address(sha256), lifetime)

    return link
