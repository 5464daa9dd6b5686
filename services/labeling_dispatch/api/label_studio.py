"""Label Studio's webhook back to Conveyor (annotations created, changed, deleted there)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from services.labeling_dispatch.api.dependencies import LabelingDep, Viewer
from services.labeling_dispatch.use_cases import label_studio
from services.labeling_dispatch.use_cases.label_studio import (
    TOKEN_HEADER,
    LabelStudioAnswer,
    LabelStudioCall,
    ProjectOut,
)
from shared.errors import error_responses

router = APIRouter()


@router.post(
    "/v1/vendors/{vendor_id}/label-studio/events",
    tags=["vendor webhooks"],
    summary="Label Studio reports annotations of a label_studio vendor's projects",
    description=(
        "Registered by Conveyor on every project it creates in Label Studio, for "
        "ANNOTATION_CREATED, ANNOTATION_UPDATED and ANNOTATIONS_DELETED. Label Studio does not "
        f"sign webhooks: the call carries the vendor's secret in {TOKEN_HEADER} (401 "
        "otherwise). Results are converted to canonical pixel shapes and validated against the "
        "job's ontology version; an invalid one is refused and recorded on its task "
        "(/v1/tasks/{task_id}/refusals) while the call is answered 200 (Label Studio cannot "
        "act on an error). A change is stored as a new version, a deletion marks the stored "
        "version withdrawn. The same annotation version reported twice is stored once."
    ),
    responses=error_responses(401, 413, 422),
    openapi_extra={
        "parameters": [
            {
                "name": TOKEN_HEADER,
                "in": "header",
                "required": True,
                "description": "the vendor's secret, sent by Label Studio as a static header",
                "schema": {"type": "string"},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
    },
)
async def receive_label_studio_event(
    vendor_id: uuid.UUID, request: Request, labeling: LabelingDep
) -> LabelStudioAnswer:
    call = LabelStudioCall(
        vendor_id=vendor_id,
        chunks=request.stream(),
        content_length=request.headers.get("content-length"),
        token=request.headers.get(TOKEN_HEADER),
        client=request.client.host if request.client else "",
    )
    return await label_studio.receive_event(labeling, call)


@router.get(
    "/v1/jobs/{job_id}/label-studio",
    tags=["jobs"],
    summary="Where a job is labeled in Label Studio: one project per vendor and pass",
    responses=error_responses(401, 403, 404, 422),
)
async def job_label_studio_projects(
    job_id: uuid.UUID, principal: Viewer, labeling: LabelingDep
) -> list[ProjectOut]:
    return await label_studio.projects_of_job(labeling, principal, job_id)
