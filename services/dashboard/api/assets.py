"""The asset page's API: one asset's whole story, and its thumbnail."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from services.dashboard.api.cleaning_schemas import AssetPage
from services.dashboard.api.dependencies import CallerKey, DashboardDep, Viewer
from services.dashboard.use_cases import assets, thumbnails
from shared.errors import error_responses

router = APIRouter(prefix="/v1", tags=["assets"], responses=error_responses(401, 403))


@router.get(
    "/assets/{asset_id}",
    summary="An asset: metadata, quality report, audit timeline, chain state, trace link",
    description="Each service is asked with the caller's key; one that fails leaves its part "
    "null and is named in `problems`.",
    responses=error_responses(404, 422),
)
async def asset_page(
    asset_id: uuid.UUID, dashboard: DashboardDep, principal: Viewer, api_key: CallerKey
) -> AssetPage:
    return AssetPage.model_validate(
        await assets.asset_page(dashboard, principal, api_key, asset_id)
    )


@router.get(
    "/assets/{asset_id}/thumbnail",
    summary="A small JPEG of the asset (a video's first frame), made once and cached",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "the thumbnail"},
        304: {"description": "the thumbnail the caller holds (If-None-Match) is current"},
        **error_responses(404, 422),
    },
)
async def thumbnail(
    asset_id: uuid.UUID, request: Request, dashboard: DashboardDep, principal: Viewer
) -> Response:
    found = await thumbnails.thumbnail(dashboard, principal, asset_id)
    headers = {
        "Cache-Control": "private, max-age=86400",
        "ETag": found.etag,
        "X-Thumbnail": "made" if found.made else "cached",
    }
    if request.headers.get("If-None-Match") == found.etag:
        return Response(status_code=304, headers=headers)
    return Response(found.content, media_type="image/jpeg", headers=headers)
