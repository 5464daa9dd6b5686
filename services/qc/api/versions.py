"""Dataset versions and their exports: freeze (uploader), list, read; request an export
(uploader) and follow it to its download URL."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal, cast

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from services.qc.api.dependencies import CursorParam, Limit, QcDep, Uploader, Viewer
from services.qc.use_cases import exports, versions
from services.qc.use_cases.exports import ExportView
from services.qc.use_cases.versions import VersionView
from shared.errors import error_responses

router = APIRouter(tags=["versions"])

ExportState = Literal["queued", "running", "done", "failed"]
DatasetRef = Path(min_length=1, max_length=63, description="the dataset's slug or id")
VersionNumber = Path(ge=1, le=2_147_483_647, description="the version's number")


class VersionOut(BaseModel):
    """A frozen dataset version."""

    id: uuid.UUID
    dataset_id: uuid.UUID
    dataset: str = Field(description="the dataset's slug")
    number: int
    manifest_hash: str = Field(description="sha256 of the version's canonical manifest")
    item_count: int = Field(description="images in the version")
    shape_count: int = Field(description="accepted shapes in the version")
    left_out: int = Field(
        description="assets with accepted labels left out: QC knew no sha256 or size of them"
    )
    classes: list[str] = Field(description="export categories, in order")
    created_by: str
    created_at: datetime


class VersionPage(BaseModel):
    """One page of versions; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[VersionOut]
    next_cursor: str | None


class ExportCreate(BaseModel):
    """What an export holds: COCO instances or YOLO labels, the images or links to them."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["coco", "yolo"]
    images: Literal["include", "links"] = Field(
        default="include",
        description="include: the image files are in the zip; links: links.jsonl holds "
        "presigned URLs (valid 7 days) instead",
    )


class ExportOut(BaseModel):
    """An export and its progress; ``download_url`` (time-limited) once ``state`` is done."""

    id: uuid.UUID
    dataset_id: uuid.UUID
    version_id: uuid.UUID
    version: int
    format: str
    images: str
    state: ExportState
    done: int = Field(description="images written so far")
    total: int = Field(description="images in the version")
    attempts: int
    annotation_count: int | None
    sha256: str | None = Field(description="sha256 of the zip")
    size: int | None = Field(description="bytes of the zip")
    error: str | None
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    download_url: str | None
    download_expires_at: datetime | None


def _version_out(view: VersionView) -> VersionOut:
    v = view.version
    return VersionOut(
        id=v.id,
        dataset_id=v.dataset_id,
        dataset=view.dataset_slug,
        number=v.number,
        manifest_hash=v.manifest_hash,
        item_count=v.item_count,
        shape_count=v.shape_count,
        left_out=v.left_out,
        classes=v.classes,
        created_by=v.created_by,
        created_at=v.created_at,
    )


def _export_out(view: ExportView) -> ExportOut:
    e = view.export
    return ExportOut(
        id=e.id,
        dataset_id=e.dataset_id,
        version_id=e.version_id,
        version=view.version_number,
        format=e.format,
        images=e.images,
        state=cast(ExportState, e.state),
        done=e.done,
        total=e.total,
        attempts=e.attempts,
        annotation_count=e.annotation_count,
        sha256=e.sha256,
        size=e.size,
        error=e.error,
        requested_by=e.requested_by,
        created_at=e.created_at,
        started_at=e.started_at,
        finished_at=e.finished_at,
        download_url=view.download_url,
        download_expires_at=view.download_expires_at,
    )


@router.post(
    "/v1/datasets/{dataset}/versions",
    status_code=201,
    summary="Freeze the dataset's accepted labels into a new version (uploader); 200 with the "
    "existing version when one already holds exactly this content",
    responses={
        200: {"model": VersionOut, "description": "the content was frozen before"},
        **error_responses(401, 403, 404, 409, 422),
    },
)
async def create_version(
    principal: Uploader, qc: QcDep, response: Response, dataset: str = DatasetRef
) -> VersionOut:
    view = await versions.freeze(qc, principal, dataset)
    if not view.created:
        response.status_code = 200
    return _version_out(view)


@router.get(
    "/v1/datasets/{dataset}/versions",
    summary="List the dataset's versions, oldest first",
    responses=error_responses(400, 401, 403, 404, 422),
)
async def list_versions(
    principal: Viewer,
    qc: QcDep,
    dataset: str = DatasetRef,
    limit: Limit = 50,
    cursor: CursorParam = None,
) -> VersionPage:
    views, next_cursor = await versions.list_versions(qc, principal, dataset, limit, cursor)
    return VersionPage(items=[_version_out(v) for v in views], next_cursor=next_cursor)


@router.get(
    "/v1/datasets/{dataset}/versions/{number}",
    summary="One version of the dataset",
    responses=error_responses(401, 403, 404, 422),
)
async def get_version(
    principal: Viewer, qc: QcDep, dataset: str = DatasetRef, number: int = VersionNumber
) -> VersionOut:
    return _version_out(await versions.get_version(qc, principal, dataset, number))


@router.post(
    "/v1/datasets/{dataset}/versions/{number}/exports",
    status_code=202,
    summary="Export the version as a zip (uploader): built in the background, follow it at "
    "GET /v1/exports/{id}",
    responses=error_responses(401, 403, 404, 422),
)
async def create_export(
    body: ExportCreate,
    principal: Uploader,
    qc: QcDep,
    dataset: str = DatasetRef,
    number: int = VersionNumber,
) -> ExportOut:
    view = await exports.request_export(qc, principal, dataset, number, body.format, body.images)
    return _export_out(view)


@router.get(
    "/v1/exports/{export_id}",
    summary="An export's state and progress; a time-limited download URL once done",
    responses=error_responses(401, 403, 404, 422),
)
async def get_export(export_id: uuid.UUID, principal: Viewer, qc: QcDep) -> ExportOut:
    return _export_out(await exports.get_export(qc, principal, export_id))
