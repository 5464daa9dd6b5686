"""The review queue: list, show with every answer and the consensus, accept, reject, rework."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from services.qc.api.dependencies import CursorParam, Limit, QcDep, Uploader, Viewer
from services.qc.use_cases import reviews
from services.qc.use_cases.reviews import ReviewDetail
from shared.errors import error_responses

router = APIRouter(tags=["reviews"])

ReviewState = Literal["waiting", "review", "accepted", "rejected", "rework"]
# Some text, no NUL (Postgres text cannot hold one).
Comment = Annotated[
    str, Field(min_length=1, max_length=4000, pattern=r"^[^\x00]*[^\x00\s][^\x00]*$")
]
REVIEW_PATH = "/v1/reviews/{job_id}/{asset_id}"


class ReviewOut(BaseModel):
    """Where one asset of one job stands in QC (``round``: rework rounds so far)."""

    model_config = ConfigDict(from_attributes=True)

    job_id: uuid.UUID
    asset_id: uuid.UUID
    dataset_id: uuid.UUID
    state: ReviewState
    round: int
    reasons: list[str]
    agreement: float | None
    decided_by: str | None
    comment: str | None
    first_answer_at: datetime | None
    updated_at: datetime


class ReviewPage(BaseModel):
    """One page of reviews; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[ReviewOut]
    next_cursor: str | None


class AnswerOut(BaseModel):
    """An answer that counts now: who gave it, its shapes and what the checks found."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    task_id: uuid.UUID
    replica: int
    vendor_id: uuid.UUID
    annotator_id: str
    version: int
    gold: bool
    shapes: list[dict[str, Any]]
    findings: list[dict[str, Any]]
    gold_score: dict[str, Any] | None
    received_at: datetime


class ReviewTaskOut(BaseModel):
    """One of the asset's tasks in the job (what a rework can send back)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    replica: int
    gold: bool


class ReviewDetailOut(ReviewOut):
    """A review with the comparison of its annotators (``consensus``), the label set it
    proposes (or the one accepted), every live answer and the asset's tasks."""

    consensus: dict[str, Any] | None
    label_set: list[dict[str, Any]] | None
    answers: list[AnswerOut]
    tasks: list[ReviewTaskOut]


def _detail(found: ReviewDetail) -> ReviewDetailOut:
    return ReviewDetailOut(
        **ReviewOut.model_validate(found.review).model_dump(),
        consensus=found.review.consensus,
        label_set=found.review.label_set,
        answers=[AnswerOut.model_validate(a) for a in found.annotations],
        tasks=[ReviewTaskOut.model_validate(t) for t in found.tasks],
    )


class AcceptIn(BaseModel):
    """Accept the consensus label set, or ``shapes`` instead (canonical pixel shapes)."""

    model_config = ConfigDict(extra="forbid")

    shapes: list[dict[str, Any]] | None = Field(default=None, max_length=1000)
    comment: Comment | None = None


class RejectIn(BaseModel):
    """Reject the answers; the comment says why."""

    model_config = ConfigDict(extra="forbid")

    comment: Comment


class ReworkIn(BaseModel):
    """Send tasks back (default: every answered task of the asset) to the vendors that
    answered them, or all to ``vendor_id`` (a vendor of the job)."""

    model_config = ConfigDict(extra="forbid")

    comment: Comment
    task_ids: list[uuid.UUID] | None = Field(default=None, min_length=1, max_length=100)
    vendor_id: uuid.UUID | None = None


@router.get(
    "/v1/reviews", summary="List reviews", responses=error_responses(400, 401, 403, 404, 422)
)
async def list_reviews(
    principal: Viewer,
    qc: QcDep,
    limit: Limit = 50,
    cursor: CursorParam = None,
    job_id: uuid.UUID | None = None,
    state: ReviewState = "review",
    dataset: Annotated[
        str | None, Query(min_length=1, max_length=63, description="slug or id")
    ] = None,
) -> ReviewPage:
    rows, next_cursor = await reviews.list_reviews(
        qc, principal, limit, cursor, job_id=job_id, state=state, dataset=dataset
    )
    return ReviewPage(items=[ReviewOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get(
    REVIEW_PATH,
    summary="An asset's review in a job, with every answer and the consensus",
    responses=error_responses(401, 403, 404, 422),
)
async def get_review(
    job_id: uuid.UUID, asset_id: uuid.UUID, principal: Viewer, qc: QcDep
) -> ReviewDetailOut:
    return _detail(await reviews.review_detail(qc, principal, job_id, asset_id))


@router.post(
    f"{REVIEW_PATH}/accept",
    summary="Accept the consensus (or the shapes given) as the asset's labels",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def accept(
    job_id: uuid.UUID, asset_id: uuid.UUID, body: AcceptIn, principal: Uploader, qc: QcDep
) -> ReviewDetailOut:
    found = await reviews.accept_review(
        qc, principal, job_id, asset_id, shapes=body.shapes, comment=body.comment
    )
    return _detail(found)


@router.post(
    f"{REVIEW_PATH}/reject",
    summary="Reject the asset's answers",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def reject(
    job_id: uuid.UUID, asset_id: uuid.UUID, body: RejectIn, principal: Uploader, qc: QcDep
) -> ReviewDetailOut:
    found = await reviews.reject_review(qc, principal, job_id, asset_id, comment=body.comment)
    return _detail(found)


@router.post(
    f"{REVIEW_PATH}/rework",
    summary="Send the asset's tasks back for rework",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def rework(
    job_id: uuid.UUID, asset_id: uuid.UUID, body: ReworkIn, principal: Uploader, qc: QcDep
) -> ReviewDetailOut:
    found = await reviews.send_back_review(
        qc,
        principal,
        job_id,
        asset_id,
        comment=body.comment,
        task_ids=body.task_ids,
        vendor_id=body.vendor_id,
    )
    return _detail(found)
