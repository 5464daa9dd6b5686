"""QC's rework requests: answered tasks back into the queue, with the reviewer's comment, for the
vendor that answered them or the one the reviewer named.

A task is aimed at one vendor by excluding every other vendor of its job, the same exclusion
list the dispatcher already honours for lapsed leases: no new column and no new rule in the
dispatcher's queries. The request is claimed in the inbox in the unit of work that requeues the
tasks, so a redelivered request changes nothing; a task no longer ``submitted`` (sent back
already, cancelled) is skipped.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from services.labeling_dispatch.context import Labeling
from services.labeling_dispatch.domain.batches import only_for, rework_vendor
from services.labeling_dispatch.domain.tasks import TaskState, task_transition
from services.labeling_dispatch.models import Task
from services.labeling_dispatch.repository import dispatch as dispatch_repo
from services.labeling_dispatch.repository import rework as repo
from shared.events import AnnotationReworkRequestedV1, TaskReworkSentV1
from shared.routing import Event

log = logging.getLogger(__name__)

# Jobs whose queued tasks can still go out (a paused job sends them when it resumes).
LIVE_JOB_STATES = frozenset({"open", "paused"})


async def send_back_for_rework(
    labeling: Labeling, event: Event[AnnotationReworkRequestedV1]
) -> None:
    """Requeue the request's submitted tasks for their vendor, with the comment, next attempt."""
    request = event.payload
    sent = 0
    async with labeling.units.begin() as uow:
        if not await uow.claim(event.envelope):
            return
        job = await dispatch_repo.job_by_id(uow.session, request.job_id)
        if job is None or job.state not in LIVE_JOB_STATES:
            log.info("rework of job %s ignored: the job is not open", request.job_id)
            return
        tasks = await repo.tasks_of_job(uow.session, request.job_id, request.task_ids)
        vendors = (await dispatch_repo.job_vendors(uow.session, [job.id]))[job.id]
        holders = await repo.replica_holders(
            uow.session, job.id, sorted({t.asset_id for t in tasks})
        )
        now = datetime.now(UTC)
        for task in tasks:
            if task.state != TaskState.submitted:
                continue
            vendor_id = rework_vendor(
                task.id, task.vendor_id, request.vendor_id, vendors, holders[task.asset_id]
            )
            if vendor_id is not None:  # later tasks of the asset must not go to it as well
                holders[task.asset_id].setdefault(task.id, set()).add(vendor_id)
            _requeue(task, vendor_id, vendors, request.comment, now)
            uow.emit(
                TaskReworkSentV1(
                    task_id=task.id,
                    job_id=task.job_id,
                    asset_id=task.asset_id,
                    vendor_id=vendor_id,
                    comment=request.comment,
                    requested_by=request.requested_by,
                ),
                subject=str(task.asset_id),
                actor=request.requested_by,
                key=str(task.id),
            )
            sent += 1
        await uow.session.flush()
    if sent:
        labeling.wake_dispatcher.set()


def _requeue(
    task: Task,
    vendor_id: uuid.UUID | None,
    job_vendors: Sequence[uuid.UUID],
    comment: str,
    now: datetime,
) -> None:
    """submitted -> rework -> queued: the next attempt, aimed at ``vendor_id``."""
    task_transition(task.state, TaskState.rework)
    task_transition(TaskState.rework, TaskState.queued)
    task.state = TaskState.queued
    task.attempt += 1
    task.rework_comment = comment
    task.excluded_vendors = only_for(vendor_id, job_vendors)
    task.vendor_id = task.delivery_id = None
    task.lease_expires_at = task.dispatched_at = None
    task.updated_at = now
