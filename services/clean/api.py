"""Clean's HTTP routes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request

from services.clean.context import Clean
from services.clean.policy import PolicyRules
from services.clean.schemas import (
    DuplicateGroups,
    PolicyOut,
    QualityReportOut,
    QualitySummary,
    ReanalysisOut,
    ReanalysisPage,
    ReanalysisStart,
    Reevaluation,
    SourcesIn,
    SourcesStored,
)
from services.clean.use_cases import policy, reanalysis, reports
from services.clean.use_cases.reanalysis import ReanalysisRunner
from shared.auth import Principal, Role, require
from shared.errors import error_responses

router = APIRouter(tags=["quality"])


def get_clean(request: Request) -> Clean:
    """The service's context built in the lifespan."""
    clean: Clean = request.app.state.clean
    return clean


def get_reanalyses(request: Request) -> ReanalysisRunner:
    """The background runner of re-analysis jobs built in the lifespan."""
    runner: ReanalysisRunner = request.app.state.reanalyses
    return runner


CleanDep = Annotated[Clean, Depends(get_clean)]
RunnerDep = Annotated[ReanalysisRunner, Depends(get_reanalyses)]
Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
CursorParam = Annotated[str | None, Query(description="next_cursor from the previous page")]
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


@router.post(
    "/v1/datasets/{slug}/reanalyses",
    status_code=202,
    summary="Start re-measuring a dataset's stored files in the background (admin)",
    description="Every asset with a quality report at this moment is read from the store again "
    "and measured by today's checks; its metrics, structural findings and hashes are replaced "
    "(the duplicate decision is kept). With `rejudge` (the default) the new measurements are "
    "judged under the dataset's current policy as a policy change does: an asset whose verdict "
    "changes gets a new asset.cleaned / asset.rejected event, the others none. One job per "
    "dataset at a time: while one is queued or running, another start is refused with 409 and "
    "the running job's id in `error.details.reanalysis_id`.",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def start_reanalysis(
    slug: str,
    principal: Admin,
    clean: CleanDep,
    runner: RunnerDep,
    body: Annotated[ReanalysisStart, Body()] = ReanalysisStart(),  # noqa: B008 (immutable)
) -> ReanalysisOut:
    return await reanalysis.start(clean, runner, principal, slug, body.rejudge)


@router.post(
    "/v1/datasets/{slug}/sources",
    summary="Backfill the stored sources of reports made before they were kept (admin)",
    description="A re-analysis reads each file again from the asset.ingested payload stored "
    "with its report; reports made before that payload was stored fail with "
    "`no_stored_source`. Post the dataset's asset.ingested payloads (the audit trail holds "
    "them: `conveyor quality backfill-sources` pages through it) and each report without a "
    "source gets its own. Reports that have one keep it; payloads of assets with no report in "
    "this dataset are counted as `unknown` and not stored. At most 500 payloads per request.",
    responses=error_responses(401, 403, 404, 422),
)
async def store_sources(
    slug: str, body: SourcesIn, principal: Admin, clean: CleanDep
) -> SourcesStored:
    return await reanalysis.store_sources(clean, principal, slug, body.assets)


@router.get(
    "/v1/datasets/{slug}/reanalyses",
    summary="A dataset's re-analysis jobs, newest first",
    responses=error_responses(400, 401, 403, 404, 422),
)
async def list_reanalyses(
    slug: str,
    principal: Viewer,
    clean: CleanDep,
    limit: Limit = 20,
    cursor: CursorParam = None,
) -> ReanalysisPage:
    return await reanalysis.list_jobs(clean, principal, slug, limit, cursor)


@router.get(
    "/v1/reanalyses/{reanalysis_id}",
    summary="A re-analysis job: state, counts, rate and time left",
    responses=error_responses(401, 403, 404, 422),
)
async def get_reanalysis(
    reanalysis_id: uuid.UUID, principal: Viewer, clean: CleanDep
) -> ReanalysisOut:
    return await reanalysis.get(clean, principal, reanalysis_id)


@router.post(
    "/v1/reanalyses/{reanalysis_id}/cancel",
    summary="Cancel a queued or running re-analysis (admin)",
    description="Pages already stored stay re-analysed; the page being measured is dropped. "
    "409 once the job has finished.",
    responses=error_responses(401, 403, 404, 409, 422),
)
async def cancel_reanalysis(
    reanalysis_id: uuid.UUID, principal: Admin, clean: CleanDep
) -> ReanalysisOut:
    return await reanalysis.cancel(clean, principal, reanalysis_id)
