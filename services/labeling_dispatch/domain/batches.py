"""What goes out to a vendor, and which vendor a task may go to next. Pure: no I/O.

A delivery body names tasks and image links only: no asset id and no gold flag, so a vendor
cannot tell a gold task from a regular one nor link tasks to Conveyor's assets. Replicas of one
asset share an opaque ``replica_group`` so a vendor holding several assigns different people.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class JobBrief:
    """The job as a vendor sees it."""

    id: uuid.UUID
    name: str
    ontology_id: uuid.UUID
    ontology_version: int
    classes: list[dict[str, Any]]
    lease_seconds: int


@dataclass(frozen=True)
class BatchItem:
    """One task of a batch with what the vendor needs to label it."""

    task_id: uuid.UUID
    asset_id: uuid.UUID
    replica: int
    sha256: str
    width: int | None
    height: int | None
    media_type: str | None
    predictions: list[dict[str, Any]]
    rework_comment: str | None


def replica_group(job_id: uuid.UUID, asset_id: uuid.UUID) -> str:
    """The same opaque value for every replica of one asset in one job, and nothing else."""
    return uuid.uuid5(job_id, str(asset_id)).hex


def delivery_body(
    delivery_id: uuid.UUID,
    vendor_id: uuid.UUID,
    job: JobBrief,
    items: Sequence[BatchItem],
    image_url: Callable[[str], str],
) -> bytes:
    """The exact JSON bytes of a delivery; ``image_url`` turns a sha256 into a link."""
    body = {
        "delivery_id": str(delivery_id),
        "vendor_id": str(vendor_id),
        "job": {
            "id": str(job.id),
            "name": job.name,
            "ontology": {
                "id": str(job.ontology_id),
                "version": job.ontology_version,
                "classes": job.classes,
            },
            "lease_seconds": job.lease_seconds,
        },
        "tasks": [
            {
                "task_id": str(item.task_id),
                "replica": item.replica,
                "replica_group": replica_group(job.id, item.asset_id),
                "image": {
                    "url": image_url(item.sha256),
                    "width": item.width,
                    "height": item.height,
                    "media_type": item.media_type,
                },
                "predictions": item.predictions,
                "rework_comment": item.rework_comment,
            }
            for item in items
        ],
    }
    return json.dumps(body, separators=(",", ":")).encode()


def excluded_after_release(
    excluded: Sequence[uuid.UUID], vendor_id: uuid.UUID, job_vendors: Sequence[uuid.UUID]
) -> list[uuid.UUID]:
    """A released task's excluded vendors: ``vendor_id`` joins them only if another remains.

    With no other vendor left to take it, the task may go back to the same one rather than
    wait forever.
    """
    kept = list(excluded)
    if vendor_id in kept:
        return kept
    others = [v for v in job_vendors if v != vendor_id and v not in kept]
    return [*kept, vendor_id] if others else kept


def one_replica_per_asset(
    task_assets: Sequence[tuple[uuid.UUID, uuid.UUID]], several_vendors: bool
) -> list[uuid.UUID]:
    """The task ids a batch may hold, in order: with several vendors, one replica per asset."""
    if not several_vendors:
        return [task for task, _ in task_assets]
    seen: set[uuid.UUID] = set()
    kept = []
    for task, asset in task_assets:
        if asset not in seen:
            seen.add(asset)
            kept.append(task)
    return kept


def rework_vendor(
    task_id: uuid.UUID,
    answered_by: uuid.UUID | None,
    requested: uuid.UUID | None,
    job_vendors: Sequence[uuid.UUID],
    holders: Mapping[uuid.UUID, set[uuid.UUID]],
) -> uuid.UUID | None:
    """The vendor a reworked task goes to: ``requested`` if it is a vendor of the job and, with
    several vendors, holds no other replica of the asset (``holders``: task id -> vendors holding
    or having answered it); else the vendor that answered it."""
    if requested is None or requested not in job_vendors:
        return answered_by
    if len(job_vendors) > 1 and any(
        requested in vendors for other, vendors in holders.items() if other != task_id
    ):
        return answered_by
    return requested


def only_for(vendor_id: uuid.UUID | None, job_vendors: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """The excluded vendors that leave ``vendor_id`` the only one of the job to take a task
    (none when it is not, or no longer, a vendor of the job: then any of them may)."""
    if vendor_id is None or vendor_id not in job_vendors:
        return []
    return [v for v in job_vendors if v != vendor_id]
