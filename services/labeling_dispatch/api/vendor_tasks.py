"""What a vendor sees of its own tasks (``X-Vendor-Key``): the ones it holds now."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header

from services.labeling_dispatch.api.dependencies import CursorParam, LabelingDep, Limit
from services.labeling_dispatch.repository.annotations import VendorCredentials
from services.labeling_dispatch.use_cases import vendor_access
from services.labeling_dispatch.use_cases.vendor_access import VendorTask, VendorTaskPage
from shared.errors import error_responses

router = APIRouter(prefix="/v1/vendor", tags=["vendor access"])


async def calling_vendor(
    labeling: LabelingDep,
    x_vendor_key: Annotated[
        str | None, Header(description="the vendor's API key (cvv_...)", max_length=256)
    ] = None,
) -> VendorCredentials:
    """The enabled vendor behind the ``X-Vendor-Key`` header, or 401."""
    return await vendor_access.vendor_by_key(labeling, x_vendor_key)


CallingVendor = Annotated[VendorCredentials, Depends(calling_vendor)]


@router.get(
    "/tasks",
    summary="The tasks this vendor holds now (open, oldest first)",
    responses=error_responses(400, 401),
)
async def list_vendor_tasks(
    vendor: CallingVendor, labeling: LabelingDep, limit: Limit = 50, cursor: CursorParam = None
) -> VendorTaskPage:
    return await vendor_access.open_tasks(labeling, vendor, limit, cursor)


@router.get(
    "/tasks/{task_id}",
    summary="One task this vendor holds (another vendor's task is not found)",
    responses=error_responses(401, 404),
)
async def get_vendor_task(
    task_id: uuid.UUID, vendor: CallingVendor, labeling: LabelingDep
) -> VendorTask:
    return await vendor_access.open_task(labeling, vendor, task_id)
