"""A job's agreement on image-level classes (alpha, kappas)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from services.qc.api.dependencies import QcDep, Viewer
from services.qc.use_cases import agreement
from services.qc.use_cases.agreement import JobAgreementOut
from shared.errors import error_responses

router = APIRouter(tags=["agreement"])


@router.get(
    "/v1/jobs/{job_id}/agreement",
    summary="A job's chance-corrected agreement on image classes: Krippendorff's alpha "
    "(nominal), Fleiss' kappa, Cohen's kappa per pair of annotators",
    responses=error_responses(401, 403, 404, 422),
)
async def job_agreement(job_id: uuid.UUID, principal: Viewer, qc: QcDep) -> JobAgreementOut:
    return await agreement.job_agreement_report(qc, principal, job_id)
