"""The vendor webhook (annotations in), and what people can read of it per task."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request

from services.labeling_dispatch.api.dependencies import CursorParam, LabelingDep, Limit, Viewer
from services.labeling_dispatch.domain.signatures import DELIVERY_HEADER, SIGNATURE_HEADER
from services.labeling_dispatch.use_cases import submissions
from services.labeling_dispatch.use_cases.submissions import (
    AnnotationPage,
    RefusalPage,
    SubmissionAnswer,
    Webhook,
    WebhookBody,
)
from shared.errors import error_responses

router = APIRouter()


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its ``$defs`` written in place: the body is documented by
    hand (the route reads it as a bounded stream), and ``#/$defs/...`` would not resolve
    inside the OpenAPI document."""
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


_SIGNED_HEADERS: list[dict[str, Any]] = [
    {
        "name": SIGNATURE_HEADER,
        "in": "header",
        "required": True,
        "description": "t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.' + body under the "
        "vendor's secret> (several v1= while a secret is rotated)",
        "schema": {"type": "string"},
    },
    {
        "name": DELIVERY_HEADER,
        "in": "header",
        "required": True,
        "description": "the vendor's id of this delivery: a replay of an accepted one is "
        "answered 200 with duplicate true and changes nothing",
        "schema": {"type": "string", "maxLength": 128},
    },
]


@router.post(
    "/v1/vendors/{vendor_id}/webhook",
    tags=["vendor webhooks"],
    summary="A vendor posts annotations of its tasks (signed)",
    description=(
        "Checked in this order: body size (413), vendor and signature (401, the same answer "
        "for an unknown vendor), delivery id, replay (200 with duplicate true), payload (422), "
        "each task is this vendor's (404), its assignment still open (409 task_expired or "
        "task_already_answered), shapes valid against the job's ontology version (422 "
        "invalid_annotation listing every problem). All annotations of a request are stored, "
        "or none. Every refusal is recorded and visible under /v1/tasks/{task_id}/refusals."
    ),
    responses=error_responses(401, 404, 409, 413, 422),
    openapi_extra={
        "parameters": _SIGNED_HEADERS,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inlined(WebhookBody.model_json_schema())}},
        },
    },
)
async def receive_webhook(
    vendor_id: uuid.UUID, request: Request, labeling: LabelingDep
) -> SubmissionAnswer:
    webhook = Webhook(
        vendor_id=vendor_id,
        chunks=request.stream(),
        content_length=request.headers.get("content-length"),
        signature=request.headers.get(SIGNATURE_HEADER),
        delivery_id=request.headers.get(DELIVERY_HEADER),
        client=request.client.host if request.client else "",
    )
    return await submissions.receive(labeling, webhook)


@router.get(
    "/v1/tasks/{task_id}/annotations",
    tags=["tasks"],
    summary="A task's stored annotations, oldest first",
    responses=error_responses(400, 401, 403, 404),
)
async def task_annotations(
    task_id: uuid.UUID,
    principal: Viewer,
    labeling: LabelingDep,
    limit: Limit = 50,
    cursor: CursorParam = None,
) -> AnnotationPage:
    return await submissions.annotations_of_task(labeling, principal, task_id, limit, cursor)


@router.get(
    "/v1/tasks/{task_id}/refusals",
    tags=["tasks"],
    summary="Vendor requests about a task that were refused (why, status, problems)",
    responses=error_responses(400, 401, 403, 404),
)
async def task_refusals(
    task_id: uuid.UUID,
    principal: Viewer,
    labeling: LabelingDep,
    limit: Limit = 50,
    cursor: CursorParam = None,
) -> RefusalPage:
    return await submissions.refusals_of_task(labeling, principal, task_id, limit, cursor)
