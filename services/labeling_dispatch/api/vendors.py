"""Vendors' routes: register, list, read, change, rotate credentials (writes: admin)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.labeling_dispatch.api.dependencies import (
    Admin,
    CursorParam,
    LabelingDep,
    Limit,
    Viewer,
)
from services.labeling_dispatch.models import Vendor
from services.labeling_dispatch.use_cases import label_studio, vendors
from services.labeling_dispatch.use_cases.vendors import Credentials
from shared.errors import error_responses

router = APIRouter(tags=["vendors"])


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http or https URL with a host")
    return value


HttpUrl = Annotated[str, Field(min_length=8, max_length=2048), AfterValidator(_http_url)]


class VendorCreate(BaseModel):
    """A vendor to register.

    ``webhook``: ``url`` is where task batches are POSTed. ``label_studio``: ``url`` is the
    Label Studio server (default: the one configured for the service) and ``token`` an admin's
    API token on it (default: the configured one); both are checked before the vendor is made.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")
    kind: Literal["webhook", "label_studio"] = "webhook"
    url: HttpUrl | None = None
    token: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        pattern=r"^[\x21-\x7e]+$",
        description="label_studio only: an API token of a Label Studio admin (printable ASCII)",
    )
    capacity: int = Field(default=100, ge=1, le=1_000_000, description="most open tasks at once")
    batch_size: int = Field(default=25, ge=1, le=1000, description="tasks per delivery")


class VendorChange(BaseModel):
    """The settings to change; those left out stay as they are."""

    model_config = ConfigDict(extra="forbid")

    url: HttpUrl | None = None
    capacity: int | None = Field(default=None, ge=1, le=1_000_000)
    batch_size: int | None = Field(default=None, ge=1, le=1000)
    enabled: bool | None = None


class VendorOut(BaseModel):
    """A vendor as people see it (never its key or secret)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    kind: str
    url: str | None
    capacity: int
    batch_size: int
    enabled: bool
    created_by: str
    created_at: datetime


class VendorWithCredentials(VendorOut):
    """A vendor with its new credentials: store them now, they are not shown again."""

    api_key: str = Field(description="the vendor's X-Vendor-Key (cvv_...)")
    secret: str = Field(
        description="webhook: the HMAC secret webhooks are signed with, both directions; "
        "label_studio: the token Label Studio's webhooks carry in X-Conveyor-Token"
    )


class VendorPage(BaseModel):
    """One page of vendors; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[VendorOut]
    next_cursor: str | None


def _with_credentials(vendor: Vendor, credentials: Credentials) -> VendorWithCredentials:
    shown = VendorOut.model_validate(vendor).model_dump()
    return VendorWithCredentials(**shown, api_key=credentials.api_key, secret=credentials.secret)


@router.post(
    "/v1/vendors",
    status_code=201,
    summary="Register a vendor (admin); its API key and secret are shown once",
    responses=error_responses(401, 403, 409, 422),
)
async def create_vendor(
    body: VendorCreate, principal: Admin, labeling: LabelingDep
) -> VendorWithCredentials:
    vendor, credentials = await vendors.create_vendor(
        labeling,
        principal,
        name=body.name,
        kind=body.kind,
        url=body.url,
        capacity=body.capacity,
        batch_size=body.batch_size,
        token=body.token,
    )
    return _with_credentials(vendor, credentials)


@router.get("/v1/vendors", summary="List vendors", responses=error_responses(400, 401, 403))
async def list_vendors(
    principal: Viewer, labeling: LabelingDep, limit: Limit = 50, cursor: CursorParam = None
) -> VendorPage:
    rows, next_cursor = await vendors.list_vendors(labeling, limit, cursor)
    return VendorPage(items=[VendorOut.model_validate(v) for v in rows], next_cursor=next_cursor)


@router.get(
    "/v1/vendors/{vendor_id}", summary="A vendor", responses=error_responses(401, 403, 404, 422)
)
async def get_vendor(vendor_id: uuid.UUID, principal: Viewer, labeling: LabelingDep) -> VendorOut:
    return VendorOut.model_validate(await vendors.get_vendor(labeling, vendor_id))


@router.patch(
    "/v1/vendors/{vendor_id}",
    summary="Change a vendor's url, capacity, batch size, or enable/disable it (admin)",
    responses=error_responses(401, 403, 404, 422),
)
async def change_vendor(
    vendor_id: uuid.UUID, body: VendorChange, principal: Admin, labeling: LabelingDep
) -> VendorOut:
    changes = body.model_dump(exclude_unset=True)
    if changes.get("url", "") is None:
        changes["url"] = ""  # an explicit null asks to remove the URL: refused for webhooks
    changes = {k: v for k, v in changes.items() if v is not None}
    return VendorOut.model_validate(
        await vendors.change_vendor(labeling, principal, vendor_id, changes)
    )


@router.post(
    "/v1/vendors/{vendor_id}/credentials",
    summary="Rotate a vendor's API key and secret (admin); the new ones are shown once",
    responses=error_responses(401, 403, 404, 422),
)
async def rotate_credentials(
    vendor_id: uuid.UUID, principal: Admin, labeling: LabelingDep
) -> VendorWithCredentials:
    vendor, credentials = await vendors.rotate_credentials(labeling, principal, vendor_id)
    if vendor.kind == label_studio.KIND:
        await label_studio.refresh_webhook_secret(labeling, vendor)
    return _with_credentials(vendor, credentials)
