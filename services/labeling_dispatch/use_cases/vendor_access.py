"""Who a vendor's request comes from: by the vendor id a webhook names, or by ``X-Vendor-Key``.

Both lookups sit on every vendor request, so they go through a short in-process cache
(:data:`CACHE_SECONDS`). The price: disabling a vendor or rotating its credentials takes up
to that long to reach every process (each worker has its own cache). A vendor that is not
found is cached too, so a flood of requests naming an unknown id costs one query per
interval, not one per request.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Row

from services.labeling_dispatch.context import Labeling
from services.labeling_dispatch.domain.batches import replica_group
from services.labeling_dispatch.repository import annotations as repo
from services.labeling_dispatch.repository.annotations import VendorCredentials
from services.labeling_dispatch.use_cases.vendors import vendor_for_key, vendor_key_hash
from shared.errors import ApiError
from shared.paging import Cursor
from shared.storage import RAW_BUCKET, content_address

CACHE_SECONDS = 2.0
# Bounds memory when someone sprays random vendor ids or keys.
MAX_ENTRIES = 10_000

VENDOR_KEY_HEADER = "X-Vendor-Key"


@dataclass(frozen=True, slots=True)
class _Entry:
    found: VendorCredentials | None
    until: float


class VendorCache:
    """Vendor credentials by vendor id and by key hash, each entry kept :data:`CACHE_SECONDS`."""

    def __init__(self) -> None:
        self.entries: dict[object, _Entry] = {}

    def get(self, key: object, now: float) -> _Entry | None:
        entry = self.entries.get(key)
        return entry if entry is not None and entry.until > now else None

    def put(self, key: object, found: VendorCredentials | None, now: float) -> None:
        if len(self.entries) >= MAX_ENTRIES:
            self.entries = {k: e for k, e in self.entries.items() if e.until > now}
            if len(self.entries) >= MAX_ENTRIES:
                self.entries.clear()
        self.entries[key] = _Entry(found, now + CACHE_SECONDS)

    def forget(self) -> None:
        """Drop everything (tests, or after changing a vendor in this process)."""
        self.entries.clear()


# One per process: the cache holds what the database says, so sharing it between the app
# instances of one process (tests) is harmless within its short lifetime.
vendor_cache = VendorCache()


async def vendor_by_id(labeling: Labeling, vendor_id: uuid.UUID) -> VendorCredentials | None:
    """The vendor a webhook names (enabled or not: the caller decides), or None."""
    now = time.monotonic()
    entry = vendor_cache.get(vendor_id, now)
    if entry is not None:
        return entry.found
    async with labeling.units.read() as session:
        found = await repo.vendor_credentials(session, vendor_id)
    vendor_cache.put(vendor_id, found, now)
    return found


async def vendor_by_key(labeling: Labeling, key: str | None) -> VendorCredentials:
    """The enabled vendor an ``X-Vendor-Key`` belongs to, or 401 (unknown, disabled, missing)."""
    if not key:
        raise ApiError(401, "unauthenticated", f"the {VENDOR_KEY_HEADER} header is required")
    now = time.monotonic()
    cache_key = ("key", vendor_key_hash(key))
    entry = vendor_cache.get(cache_key, now)
    if entry is not None:
        found = entry.found
    else:
        vendor = await vendor_for_key(labeling, key)
        found = (
            None
            if vendor is None
            else VendorCredentials(vendor.id, vendor.name, vendor.enabled, vendor.secret)
        )
        vendor_cache.put(cache_key, found, now)
    if found is None or not found.enabled:
        raise ApiError(401, "unauthenticated", "the vendor key is not valid")
    return found


class TaskImage(BaseModel):
    """Where a vendor downloads a task's image (a presigned link) and its size."""

    url: str
    width: int | None
    height: int | None
    media_type: str | None


class VendorTask(BaseModel):
    """A task as its vendor sees it: no asset id, no gold flag (gold tasks look like the rest)."""

    task_id: uuid.UUID
    replica: int
    replica_group: str
    image: TaskImage
    lease_expires_at: datetime | None
    rework_comment: str | None


class VendorTaskPage(BaseModel):
    """One page of the tasks a vendor holds; pass ``next_cursor`` back as ``cursor``."""

    items: list[VendorTask]
    next_cursor: str | None


def _vendor_task(labeling: Labeling, row: Row[Any]) -> VendorTask:
    lifetime = timedelta(seconds=labeling.settings.image_link_seconds)
    url = labeling.store.presigned_get(RAW_BUCKET, content_address(row.sha256 or ""), lifetime)
    return VendorTask(
        task_id=row.id,
        replica=row.replica,
        replica_group=replica_group(row.job_id, row.asset_id),
        image=TaskImage(url=url, width=row.width, height=row.height, media_type=row.media_type),
        lease_expires_at=row.lease_expires_at,
        rework_comment=row.rework_comment,
    )


async def open_tasks(
    labeling: Labeling, vendor: VendorCredentials, limit: int, cursor: str | None
) -> VendorTaskPage:
    """The tasks the vendor holds now (open assignments), oldest first."""
    after = Cursor.decode(cursor) if cursor else None
    async with labeling.units.read() as session:
        rows = await repo.open_tasks_of_vendor(session, vendor.id, limit + 1, after)
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = Cursor(last.assigned_at, last.id).encode()
    return VendorTaskPage(
        items=[_vendor_task(labeling, row) for row in rows[:limit]], next_cursor=next_cursor
    )


async def open_task(
    labeling: Labeling, vendor: VendorCredentials, task_id: uuid.UUID
) -> VendorTask:
    """One task the vendor holds now; another vendor's (or a closed or unknown) task is a 404."""
    async with labeling.units.read() as session:
        row = await repo.open_task_of_vendor(session, vendor.id, task_id)
    if row is None:
        raise ApiError(404, "task_not_found", f"no task {task_id}")
    return _vendor_task(labeling, row)
