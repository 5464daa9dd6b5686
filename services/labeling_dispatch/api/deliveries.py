"""The delivery log: every batch sent to a vendor and every try; manual redelivery (admin)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from services.labeling_dispatch.api.dependencies import (
    Admin,
    CursorParam,
    LabelingDep,
    Limit,
    Viewer,
)
from services.labeling_dispatch.models import Delivery, DeliveryAttempt
from services.labeling_dispatch.repository.deliveries import DeliveryFilter
from services.labeling_dispatch.use_cases import deliveries
from shared.errors import error_responses

router = APIRouter(tags=["deliveries"])

DeliveryStatus = Literal["pending", "delivered", "failed"]


class DeliveryOut(BaseModel):
    """A delivery: a batch of one job's tasks POSTed to one vendor, and its last try."""

    id: uuid.UUID
    vendor_id: uuid.UUID
    job_id: uuid.UUID
    task_count: int
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_latency_ms: float | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None


class AttemptOut(BaseModel):
    """One try: when, the vendor's status code (null: no answer), latency, error."""

    attempt: int
    attempted_at: datetime
    status_code: int | None
    latency_ms: float
    error: str | None
    manual: bool


class DeliveryDetail(DeliveryOut):
    """A delivery with its task ids and every try, first first."""

    task_ids: list[uuid.UUID]
    attempt_log: list[AttemptOut]


class DeliveryPage(BaseModel):
    """One page of deliveries, newest first; pass ``next_cursor`` back as ``cursor``."""

    items: list[DeliveryOut]
    next_cursor: str | None


def _out(delivery: Delivery) -> DeliveryOut:
    return DeliveryOut.model_validate({**_columns(delivery), "task_count": len(delivery.task_ids)})


def _detail(delivery: Delivery, attempts: list[DeliveryAttempt]) -> DeliveryDetail:
    log = [AttemptOut.model_validate(a, from_attributes=True) for a in attempts]
    return DeliveryDetail.model_validate(
        {**_columns(delivery), "task_count": len(delivery.task_ids), "attempt_log": log}
    )


def _columns(delivery: Delivery) -> dict[str, object]:
    names = set(DeliveryDetail.model_fields) - {"task_count", "attempt_log"}
    return {name: getattr(delivery, name) for name in names}


@router.get(
    "/v1/deliveries",
    summary="The delivery log, newest first",
    responses=error_responses(400, 401, 403, 422),
)
async def list_deliveries(
    principal: Viewer,
    labeling: LabelingDep,
    vendor_id: uuid.UUID | None = None,
    job_id: uuid.UUID | None = None,
    status: Annotated[DeliveryStatus | None, Query()] = None,
    limit: Limit = 50,
    cursor: CursorParam = None,
) -> DeliveryPage:
    flt = DeliveryFilter(vendor_id=vendor_id, job_id=job_id, status=status)
    rows, next_cursor = await deliveries.list_deliveries(labeling, principal, flt, limit, cursor)
    return DeliveryPage(items=[_out(d) for d in rows], next_cursor=next_cursor)


@router.get(
    "/v1/deliveries/{delivery_id}",
    summary="A delivery with every try",
    responses=error_responses(401, 403, 404, 422),
)
async def get_delivery(
    delivery_id: uuid.UUID, principal: Viewer, labeling: LabelingDep
) -> DeliveryDetail:
    return _detail(*await deliveries.get_delivery(labeling, principal, delivery_id))


@router.post(
    "/v1/deliveries/{delivery_id}/redeliver",
    summary="Send a failed delivery again now, same id and body (admin)",
    description="Its tasks still waiting in the queue are given back to it (within the "
    "vendor's capacity) and the batch is tried once, now; the answer shows how it went. A "
    "failed try leaves it failed (no automatic retries) and its tasks back in the queue. "
    "Tasks another delivery took meanwhile stay there: the vendor's answers to them are "
    "refused, so no task is ever held twice. 409 if the delivery is not failed, its vendor "
    "is disabled, or none of its tasks can be given back.",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def redeliver(
    delivery_id: uuid.UUID, principal: Admin, labeling: LabelingDep
) -> DeliveryDetail:
    return _detail(*await deliveries.redeliver(labeling, principal, delivery_id))
