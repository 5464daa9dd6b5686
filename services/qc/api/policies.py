"""A job's QC policy: read it (effective values), set it (admin)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from services.qc.api.dependencies import Admin, QcDep, Viewer
from services.qc.use_cases import policies
from services.qc.use_cases.policies import PolicyView
from shared.errors import error_responses

router = APIRouter(tags=["qc policy"])

# An ontology class name as labeling-dispatch allows it, no NUL (Postgres text cannot hold one).
ClassName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00]+$")]
ClassPair = Annotated[list[ClassName], Field(min_length=2, max_length=2)]
# A year: long enough for any consensus wait, short enough to stay a valid time span.
MAX_TIMEOUT_SECONDS = 365 * 24 * 3600.0


class QcPolicyIn(BaseModel):
    """A job's QC policy; a value left out (or null) is the service's default."""

    model_config = ConfigDict(extra="forbid")

    iou_threshold: float | None = Field(
        default=None, gt=0, le=1, allow_inf_nan=False, description="shapes match at this IoU"
    )
    min_agreement: float | None = Field(
        default=None,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="below this agreement an asset goes to review instead of being accepted",
    )
    consensus_timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        le=MAX_TIMEOUT_SECONDS,
        allow_inf_nan=False,
        description="consensus runs on the answers in once this long has passed since the first",
    )
    forbidden_together: list[ClassPair] | None = Field(
        default=None,
        max_length=1000,
        description="pairs of class names that must not appear in one image",
    )


class QcPolicyOut(BaseModel):
    """A job's effective QC policy; ``set_by_job`` names the values the job chose (the rest are
    the service's defaults)."""

    job_id: uuid.UUID
    iou_threshold: float
    min_agreement: float
    consensus_timeout_seconds: float
    forbidden_together: list[list[str]]
    set_by_job: list[str]


def _out(view: PolicyView) -> QcPolicyOut:
    policy = view.policy
    return QcPolicyOut(
        job_id=view.job_id,
        iou_threshold=policy.consensus.iou_threshold,
        min_agreement=policy.consensus.min_agreement,
        consensus_timeout_seconds=policy.consensus_timeout_seconds,
        forbidden_together=[list(p) for p in policy.forbidden_together],
        set_by_job=view.set_by_job,
    )


@router.get(
    "/v1/jobs/{job_id}/qc-policy",
    summary="A job's QC policy (effective values)",
    responses=error_responses(401, 403, 404, 422),
)
async def get_policy(job_id: uuid.UUID, principal: Viewer, qc: QcDep) -> QcPolicyOut:
    return _out(await policies.job_policy(qc, principal, job_id))


@router.put(
    "/v1/jobs/{job_id}/qc-policy",
    summary="Set a job's QC policy (admin); values left out are the service's defaults",
    responses=error_responses(401, 403, 404, 422),
)
async def put_policy(
    job_id: uuid.UUID, body: QcPolicyIn, principal: Admin, qc: QcDep
) -> QcPolicyOut:
    chosen = body.model_dump(exclude_none=True)
    return _out(await policies.set_job_policy(qc, principal, job_id, chosen))
