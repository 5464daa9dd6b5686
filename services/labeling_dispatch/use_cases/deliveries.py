"""Deliveries: one try of a delivery and what the vendor's answer means; the delivery log.

A try is made outside any transaction; its outcome is recorded in one unit of work:
2xx acknowledges it (its tasks' leases start), a passing failure schedules the next try, a
refusal or a schedule run out gives it up (its tasks go back to the queue). A manual
redelivery is one try, made now, with the same id and bytes; it is not retried on its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.labeling_dispatch.context import Labeling
from services.labeling_dispatch.domain.batches import excluded_after_release
from services.labeling_dispatch.domain.retries import (
    RetrySchedule,
    delivered,
    retry_after_seconds,
    retryable,
)
from services.labeling_dispatch.domain.tasks import TaskState, task_transition
from services.labeling_dispatch.models import Delivery, DeliveryAttempt, Task, Vendor
from services.labeling_dispatch.repository import deliveries as repo
from services.labeling_dispatch.repository import dispatch as dispatch_repo
from services.labeling_dispatch.use_cases.label_studio import (
    LabelStudioProjects,
    label_studio_api,
)
from services.labeling_dispatch.vendor_edges.base import (
    Outbound,
    SendOutcome,
    VendorEdge,
    VendorTarget,
)
from services.labeling_dispatch.vendor_edges.label_studio import LabelStudioEdge
from services.labeling_dispatch.vendor_edges.webhook import WebhookEdge
from shared.auth import Principal
from shared.errors import ApiError
from shared.events import DeliveryFailedV1, TaskDispatchedV1, TaskExpiredV1
from shared.paging import Cursor
from shared.uow import UnitOfWork

ACTOR = "labeling-dispatch"
# Vendor kinds deliveries can be sent to.
EDGE_KINDS = ("webhook", "label_studio")


@dataclass(frozen=True)
class Claimed:
    """A delivery taken for one try: where it goes and the bytes it carries."""

    vendor: VendorTarget
    outbound: Outbound
    vendor_enabled: bool = True


def vendor_edge(labeling: Labeling, kind: str) -> VendorEdge | None:
    """The edge that speaks to vendors of ``kind``."""
    if kind == "webhook":
        return WebhookEdge(labeling.http, labeling.settings.delivery_timeout_seconds)
    if kind == "label_studio":
        return LabelStudioEdge(
            lambda vendor: label_studio_api(labeling, vendor),
            LabelStudioProjects(labeling),
            labeling.settings.delivery_timeout_seconds,
        )
    return None


def hold_until(labeling: Labeling, now: datetime) -> datetime:
    """How long a claimed delivery is kept from other copies: past its try's end (a try is
    bounded by the delivery timeout) and the recording of its outcome."""
    return now + timedelta(seconds=labeling.settings.delivery_timeout_seconds + 10)


def claimed(delivery: Delivery, vendor: Vendor) -> Claimed:
    """A claim's plain form, usable after its transaction."""
    target = VendorTarget(vendor.id, vendor.kind, vendor.url, vendor.secret, dict(vendor.config))
    # A claim pushes next_attempt_at past created_at: equal means no try was ever started.
    first = delivery.attempts == 0 and delivery.next_attempt_at == delivery.created_at
    return Claimed(target, Outbound(delivery.id, delivery.body, first), vendor.enabled)


async def claim_due(labeling: Labeling, limit: int) -> list[Claimed]:
    """Up to ``limit`` deliveries due now, claimed for one try each."""
    now = datetime.now(UTC)
    async with labeling.units.begin() as uow:
        rows = await repo.claim_due(uow.session, now, limit, hold_until(labeling, now))
        return [claimed(d, v) for d, v in rows]


async def try_delivery(labeling: Labeling, claim: Claimed, *, manual: bool = False) -> str:
    """Send a claimed delivery once and record the outcome; the delivery's status after.

    A delivery to a vendor disabled meanwhile is not sent: it fails, and its tasks go back to
    the queue for the job's other vendors.
    """
    edge = vendor_edge(labeling, claim.vendor.kind)
    if not claim.vendor_enabled:
        outcome, final = SendOutcome(None, 0.0, error="vendor disabled: not sent"), True
    elif edge is None:
        outcome = SendOutcome(None, 0.0, error=f"no edge for vendor kind {claim.vendor.kind!r}")
        final = manual
    else:
        outcome, final = await edge.send(claim.vendor, claim.outbound), manual
    delivery_id = claim.outbound.delivery_id
    return await _record(labeling, delivery_id, outcome, manual=manual, final=final)


async def _record(
    labeling: Labeling,
    delivery_id: uuid.UUID,
    outcome: SendOutcome,
    *,
    manual: bool,
    final: bool,
) -> str:
    """The try in the log, and what it means for the delivery and its tasks.

    ``final``: a failure is not retried (a manual try, a disabled vendor).
    """
    now = datetime.now(UTC)
    code = outcome.status_code
    async with labeling.units.begin() as uow:
        delivery = await repo.delivery_for_update(uow.session, delivery_id)
        if delivery is None:
            return "missing"
        error = outcome.error
        if outcome.excerpt and not delivered(code):
            error = f"{error}: {outcome.excerpt}"
        await repo.add_attempt(
            uow.session,
            delivery,
            at=now,
            status_code=code,
            latency_ms=outcome.latency_ms,
            error=error,
            manual=manual,
        )
        if delivery.status != "pending":
            # settled by another copy meanwhile (its claim had lapsed): only logged
            return delivery.status
        if delivered(code):
            await _acknowledge(uow, delivery, now)
            return delivery.status
        due = None
        if retryable(code) and not final:
            hint = retry_after_seconds(code, outcome.retry_after, now)
            schedule = RetrySchedule.from_settings(labeling.settings)
            due = schedule.next_attempt(
                delivery.attempts, delivery.created_at, now, retry_after=hint
            )
        if due is None:
            await _give_up(uow, delivery, now)
        else:
            delivery.next_attempt_at = due
        return delivery.status


async def _acknowledge(uow: UnitOfWork, delivery: Delivery, now: datetime) -> None:
    """The vendor has the batch: its tasks are dispatched and their leases run from now."""
    delivery.status, delivery.delivered_at, delivery.next_attempt_at = "delivered", now, None
    tasks = await dispatch_repo.assigned_tasks_of(uow.session, delivery.id)
    for task in tasks:
        task_transition(task.state, TaskState.dispatched)
    leases = await dispatch_repo.dispatch_tasks(uow.session, tasks, delivery.id, now)
    traces = await _traces(uow.session, tasks)
    for task in tasks:
        dispatched = TaskDispatchedV1(
            task_id=task.id,
            job_id=task.job_id,
            asset_id=task.asset_id,
            vendor_id=delivery.vendor_id,
            delivery_id=delivery.id,
            attempt=task.attempt,
            lease_expires_at=leases[task.id],
        )
        _emit_for_task(uow, dispatched, task, traces)


async def _give_up(uow: UnitOfWork, delivery: Delivery, now: datetime) -> None:
    """The delivery failed: the tasks it still carries go back to the queue."""
    delivery.status, delivery.next_attempt_at = "failed", None
    tasks = await dispatch_repo.assigned_tasks_of(uow.session, delivery.id)
    await release_to_queue(uow.session, tasks, "failed", now)
    failed = DeliveryFailedV1(
        delivery_id=delivery.id,
        vendor_id=delivery.vendor_id,
        job_id=delivery.job_id,
        task_ids=[t.id for t in tasks],
        attempts=delivery.attempts,
        status_code=delivery.last_status_code,
        error=delivery.last_error or "",
    )
    uow.emit(failed, subject=str(delivery.job_id), actor=ACTOR, key=str(delivery.id))


async def release_to_queue(
    session: AsyncSession, tasks: Sequence[Task], outcome: str, now: datetime
) -> None:
    """Tasks their vendor lost back to the queue; that vendor excluded if another can take them."""
    for task in tasks:
        task_transition(task.state, TaskState.queued)
    vendors = await dispatch_repo.job_vendors(session, list({t.job_id for t in tasks}))
    excluded = {
        t.id: (
            excluded_after_release(t.excluded_vendors or [], t.vendor_id, vendors[t.job_id])
            if t.vendor_id is not None
            else list(t.excluded_vendors or [])
        )
        for t in tasks
    }
    await dispatch_repo.release_tasks(session, tasks, outcome, excluded, now)


async def expire_leases(labeling: Labeling, limit: int = 500) -> int:
    """Dispatched tasks past their lease back to the queue (TASK_EXPIRED each)."""
    now = datetime.now(UTC)
    async with labeling.units.begin() as uow:
        tasks = await dispatch_repo.lapsed_tasks(uow.session, now, limit)
        if not tasks:
            return 0
        held = {t.id: (t.vendor_id, t.attempt) for t in tasks}
        traces = await _traces(uow.session, tasks)
        await release_to_queue(uow.session, tasks, "expired", now)
        for task in tasks:
            vendor_id, attempt = held[task.id]
            if vendor_id is None:
                continue
            expired = TaskExpiredV1(
                task_id=task.id,
                job_id=task.job_id,
                asset_id=task.asset_id,
                vendor_id=vendor_id,
                attempt=attempt,
                requeued=True,
            )
            _emit_for_task(uow, expired, task, traces)
    return len(tasks)


async def _traces(session: AsyncSession, tasks: Sequence[Task]) -> dict[uuid.UUID, str | None]:
    """Each task's asset's upload trace, so labeling events join the upload's trace."""
    assets = await dispatch_repo.assets_by_ids(session, [t.asset_id for t in tasks])
    return {ident: asset.traceparent for ident, asset in assets.items()}


def _emit_for_task(
    uow: UnitOfWork,
    payload: TaskDispatchedV1 | TaskExpiredV1,
    task: Task,
    traces: dict[uuid.UUID, str | None],
) -> None:
    """A task's event: about its asset (the asset's timeline shows it), keyed by the task."""
    uow.emit(
        payload,
        subject=str(task.asset_id),
        actor=ACTOR,
        key=str(task.id),
        traceparent=traces.get(task.asset_id),
    )


# The delivery log (API) ---------------------------------------------------------------


def _datasets(principal: Principal) -> list[uuid.UUID] | None:
    return None if principal.datasets is None else [uuid.UUID(d) for d in principal.datasets]


async def list_deliveries(
    labeling: Labeling,
    principal: Principal,
    flt: repo.DeliveryFilter,
    limit: int,
    cursor: str | None,
) -> tuple[list[Delivery], str | None]:
    """A page of the delivery log, newest first, and the next page's cursor."""
    after = Cursor.decode(cursor) if cursor else None
    flt = repo.DeliveryFilter(flt.vendor_id, flt.job_id, flt.status, _datasets(principal))
    async with labeling.units.read() as session:
        rows = await repo.list_deliveries(session, flt, limit + 1, after)
    next_cursor = None
    if len(rows) > limit:
        next_cursor = Cursor(rows[limit - 1].created_at, rows[limit - 1].id).encode()
    return rows[:limit], next_cursor


async def get_delivery(
    labeling: Labeling, principal: Principal, delivery_id: uuid.UUID
) -> tuple[Delivery, list[DeliveryAttempt]]:
    """One delivery with every try (404 if the caller may not see its job's dataset)."""
    async with labeling.units.read() as session:
        found = await repo.delivery_with_job(session, delivery_id)
        if found is None or not principal.sees(found[1].dataset_id):
            raise _not_found(delivery_id)
        return found[0], await repo.attempts_of(session, delivery_id)


async def redeliver(
    labeling: Labeling, principal: Principal, delivery_id: uuid.UUID
) -> tuple[Delivery, list[DeliveryAttempt]]:
    """Send a failed delivery again now, same id and bytes, and answer how it went.

    Its tasks still queued are given back to it (within the vendor's capacity) before the try;
    those taken by another delivery meanwhile stay where they are, so a task never has two open
    assignments: the vendor gets them in the body again but its answers to them are refused.
    """
    now = datetime.now(UTC)
    async with labeling.units.begin() as uow:
        found = await repo.delivery_with_job(uow.session, delivery_id)
        if found is None or not principal.sees(found[1].dataset_id):
            raise _not_found(delivery_id)
        delivery = await repo.delivery_for_update(uow.session, delivery_id)
        if delivery is None:
            raise _not_found(delivery_id)
        if delivery.status != "failed":
            raise ApiError(
                409,
                "delivery_not_failed",
                f"delivery is {delivery.status}: only a failed delivery is redelivered",
                details={"status": delivery.status},
            )
        locked = await dispatch_repo.lock_vendor(uow.session, delivery.vendor_id, wait=True)
        if locked is None:
            raise ApiError(409, "vendor_disabled", "the delivery's vendor is disabled")
        vendor, free = locked
        tasks = await dispatch_repo.take_tasks(
            uow.session,
            vendor.id,
            delivery.job_id,
            max(free, 0),
            only=delivery.task_ids,
            keep_exclusions=False,
        )
        if not tasks:
            raise ApiError(
                409,
                "nothing_to_redeliver",
                "none of the delivery's tasks is waiting in the queue (taken by another "
                "delivery, answered, cancelled, its job not open) or the vendor is full",
            )
        await dispatch_repo.forget_exclusion(uow.session, tasks, vendor.id)
        await dispatch_repo.assign_tasks(uow.session, tasks, vendor.id, delivery.id)
        delivery.status, delivery.next_attempt_at = "pending", hold_until(labeling, now)
        claim = claimed(delivery, vendor)
    await try_delivery(labeling, claim, manual=True)
    return await get_delivery(labeling, principal, delivery_id)


def _not_found(delivery_id: uuid.UUID) -> ApiError:
    return ApiError(404, "delivery_not_found", f"no delivery {delivery_id}")
