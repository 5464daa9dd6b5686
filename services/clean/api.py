"""Clean's HTTP routes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request

from services.clean.context import Clean
from services.clean.policy import PolicyRules
from services.clean.schemas import (
    DuplicateGroups,
    PolicyOut,
    QualityReportOut,
    QualitySummary,
    Reevaluation,
)
from services.clean.use_cases import policy, reports
from shared.auth import Principal, Role, require
from shared.errors import error_responses

router = APIRouter(tags=["quality"])


def get_clean(request: Request) -> Clean:
    """The service's context built in the lifespan."""
    clean: Clean = request.app.state.clean
    return clean


CleanDep = Annotated[Clean, Depends(get_clean)]
Viewer = Annotated[Principal, require(Role.viewer)]
Admin = Annotated[Principal, require(Role.admin)]


@router.get(
    "/v1/assets/{asset_id}/quality",
    summary="An asset's quality report",
    responses=error_responses(401, 403, 404, 422),
)
async def quality_report(
    asset_id: uuid.UUID, principal: Viewer, clean: CleanDep
) -> QualityReportOut:
    return await reports.report(clean, principal, asset_id)


@router.get(
    "/v1/datasets/{slug}/quality",
    summary="A dataset's quality summary: counts per issue, metric distributions",
    responses=error_responses(401, 403, 404),
)
async def quality_summary(slug: str, principal: Viewer, clean: CleanDep) -> QualitySummary:
    return await reports.summary(clean, principal, slug)


@router.get(
    "/v1/datasets/{slug}/duplicates",
    summary="A dataset's duplicate groups (original kept, later copies listed)",
    responses=error_responses(401, 403, 404),
)
async def duplicate_groups(slug: str, principal: Viewer, clean: CleanDep) -> DuplicateGroups:
    return await reports.duplicates(clean, principal, slug)


@router.get(
    "/v1/datasets/{slug}/policy",
    summary="A dataset's cleaning policy (every check, action and threshold)",
    responses=error_responses(401, 403, 404),
)
async def get_policy(slug: str, principal: Viewer, clean: CleanDep) -> PolicyOut:
    return await policy.get_policy(clean, principal, slug)


@router.put(
    "/v1/datasets/{slug}/policy",
    summary="Replace a dataset's policy and re-judge its assets from stored metrics (admin)",
    description="Checks left out keep their default action and threshold. Assets whose verdict "
    "changes get a new asset.cleaned / asset.rejected event; nothing is downloaded again.",
    responses=error_responses(401, 403, 404, 422),
)
async def set_policy(
    slug: str, rules: PolicyRules, principal: Admin, clean: CleanDep
) -> Reevaluation:
    return await policy.set_policy(clean, principal, slug, rules)
