"""Ingest's HTTP routes: validate, call a use case (:mod:`services.ingest.use_cases`), answer."""

from __future__ import annotations

import hmac
import json
import uuid
from typing import Annotated, BinaryIO, cast

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from services.ingest.context import Ingest
from services.ingest.domain import (
    MAX_TAG_LENGTH,
    MAX_TAGS,
    TAG_PATTERN,
    FileRejected,
    clean_tags,
    parse_filer_notification,
    sanitize_filename,
)
from services.ingest.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyOut,
    ApiKeyScope,
    AssetDetail,
    AssetPage,
    DatasetCreate,
    DatasetOut,
    DatasetPage,
    HashLookup,
    HashLookupResult,
    Me,
    UploadResult,
)
from services.ingest.upload_stream import FileRefused, MalformedUpload, receive_upload
from services.ingest.use_cases import api_keys, assets, datasets, drops, uploads
from shared.auth import Principal, Role, authenticate, require
from shared.errors import ApiError, error_responses

router = APIRouter()

AUTH_ERRORS = error_responses(401, 403)


async def get_ingest(request: Request) -> Ingest:
    """The use cases' context, built in the lifespan (async: a plain def would cost each
    request a hop to FastAPI's thread pool)."""
    ingest: Ingest = request.app.state.ingest
    return ingest


IngestDep = Annotated[Ingest, Depends(get_ingest)]
Viewer = Annotated[Principal, require(Role.viewer)]
Uploader = Annotated[Principal, require(Role.uploader)]
Admin = Annotated[Principal, require(Role.admin)]
Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
CursorParam = Annotated[str | None, Query(description="next_cursor from the previous page")]


@router.post(
    "/v1/datasets",
    status_code=201,
    tags=["datasets"],
    summary="Create a dataset",
    responses=error_responses(401, 403, 409, 422),
)
async def create_dataset(body: DatasetCreate, principal: Uploader, ingest: IngestDep) -> DatasetOut:
    return await datasets.create_dataset(ingest, principal, body)


@router.get("/v1/datasets", tags=["datasets"], summary="List datasets", responses=AUTH_ERRORS)
async def list_datasets(
    principal: Viewer, ingest: IngestDep, limit: Limit = 50, cursor: CursorParam = None
) -> DatasetPage:
    return await datasets.list_datasets(ingest, principal, limit, cursor)


@router.get(
    "/v1/datasets/{slug}",
    tags=["datasets"],
    summary="Get a dataset",
    responses=error_responses(401, 403, 404),
)
async def get_dataset(slug: str, principal: Viewer, ingest: IngestDep) -> DatasetOut:
    return await datasets.get_dataset(ingest, principal, slug)


@router.post(
    "/v1/datasets/{slug}/assets",
    status_code=201,
    response_model=UploadResult,
    tags=["assets"],
    summary="Upload one or more files",
    description=(
        "Multipart upload: repeat the `files` part for several files, and the `tags` field "
        "for several tags (at most 50, 64 characters each). Each file's type is detected "
        "from its bytes as they arrive: a file that is not a supported image or video is "
        "refused (415) as soon as its first bytes show it, one over the size limit (413) as "
        "soon as it passes it, an empty one with 422 `empty`; then nothing from the request "
        "is stored. Bytes the dataset already has are not stored again: the existing asset "
        "comes back with `duplicate: true`. File names are kept as display names, shortened "
        "to 255 characters."
    ),
    responses=error_responses(400, 401, 403, 404, 408, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["files"],
                        "properties": {
                            "files": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                                "minItems": 1,
                                "description": "the files to upload",
                            },
                            "tags": {
                                # as FastAPI states an optional form list: absent, or repeated
                                "anyOf": [
                                    {
                                        "type": "array",
                                        "items": {
                                            "type": "string",
                                            "maxLength": MAX_TAG_LENGTH,
                                            "pattern": TAG_PATTERN,
                                        },
                                        "maxItems": MAX_TAGS,
                                    },
                                    {"type": "null"},
                                ],
                                "description": "tags for every file of the request",
                            },
                        },
                    },
                    "encoding": {"files": {"contentType": "application/octet-stream"}},
                }
            },
        }
    },
)
async def upload_assets(
    slug: str, request: Request, principal: Uploader, ingest: IngestDep
) -> UploadResult | JSONResponse:
    # Checked before the body is read: an unknown dataset or a foreign one costs no spooling.
    await datasets.dataset_for(ingest, slug, principal)
    try:
        received = await receive_upload(request, ingest.settings.max_upload_bytes)
    except MalformedUpload as malformed:
        raise ApiError(422, "validation_error", str(malformed)) from malformed
    except FileRefused as refused:
        name = sanitize_filename(refused.filename)
        error = ApiError(
            refused.reason.status,
            refused.reason.code,
            f"{name}: {refused.reason.message}; nothing from this request was stored",
            {"filename": name},
        )
        # The rest of the body is not wanted: closing the connection stops the client sending it.
        return JSONResponse(error.body(), refused.reason.status, {"Connection": "close"})
    try:
        valid_tags = clean_tags(received.tags)
        incoming = [
            uploads.IncomingFile(
                sanitize_filename(f.filename), cast(BinaryIO, f.spool), f.inspected
            )
            for f in received.files
        ]
        items = await uploads.upload(ingest, principal, slug, incoming, valid_tags)
    except FileRejected as refused:
        raise ApiError(refused.status, refused.code, refused.message) from refused
    finally:
        received.close()
    return UploadResult(items=items)


@router.post(
    "/v1/datasets/{slug}/assets/lookup",
    tags=["assets"],
    summary="Which of these SHA-256 hashes does the dataset already have?",
    responses=error_responses(401, 403, 404, 422),
)
async def lookup_hashes(
    slug: str, body: HashLookup, principal: Viewer, ingest: IngestDep
) -> HashLookupResult:
    known = await assets.lookup_hashes(ingest, principal, slug, body.sha256)
    return HashLookupResult(known=known)


@router.get(
    "/v1/datasets/{slug}/assets",
    tags=["assets"],
    summary="List a dataset's assets (oldest first)",
    responses=error_responses(400, 401, 403, 404),
)
async def list_assets(
    slug: str,
    principal: Viewer,
    ingest: IngestDep,
    limit: Limit = 50,
    cursor: CursorParam = None,
    media_type: Annotated[str | None, Query(examples=["image/jpeg"])] = None,
    source: Annotated[str | None, Query(pattern="^(upload|objectstore|frame)$")] = None,
    tag: str | None = None,
    sha256: Annotated[str | None, Query(pattern="^[0-9a-f]{64}$")] = None,
) -> AssetPage:
    return await assets.list_assets(
        ingest,
        principal,
        slug,
        limit=limit,
        cursor=cursor,
        media_type=media_type,
        source=source,
        tag=tag,
        sha256=sha256,
    )


@router.get(
    "/v1/assets/{asset_id}",
    tags=["assets"],
    summary="Get an asset with a time-limited download URL",
    responses=error_responses(401, 403, 404, 422),
)
async def get_asset(asset_id: uuid.UUID, principal: Viewer, ingest: IngestDep) -> AssetDetail:
    return await assets.get_asset(ingest, principal, asset_id)


@router.post(
    "/v1/api-keys",
    status_code=201,
    tags=["api keys"],
    summary="Issue an API key (admin)",
    responses=error_responses(401, 403, 422),
)
async def create_api_key(body: ApiKeyCreate, principal: Admin, ingest: IngestDep) -> ApiKeyCreated:
    return await api_keys.create_api_key(ingest, principal, body)


@router.get(
    "/v1/api-keys", tags=["api keys"], summary="List API keys (admin)", responses=AUTH_ERRORS
)
async def list_api_keys(_: Admin, ingest: IngestDep) -> ApiKeyList:
    return ApiKeyList(items=await api_keys.list_api_keys(ingest))


@router.put(
    "/v1/api-keys/{key_id}/datasets",
    tags=["api keys"],
    summary="Limit an API key to some datasets, or lift the limit (admin)",
    description=(
        "`datasets`: slugs of the datasets the key may touch from now on, or null for every "
        "dataset. Anything of another dataset then answers 404 to that key. The change is "
        "audited (`conveyor.api_key.scope_changed.v1`) and every service applies it within "
        "about a second. Admin keys cannot be limited."
    ),
    responses=error_responses(401, 403, 404, 422),
)
async def set_api_key_datasets(
    key_id: uuid.UUID, body: ApiKeyScope, principal: Admin, ingest: IngestDep
) -> ApiKeyOut:
    return await api_keys.set_api_key_datasets(ingest, principal, key_id, body)


@router.delete(
    "/v1/api-keys/{key_id}",
    status_code=204,
    tags=["api keys"],
    summary="Revoke an API key (admin)",
    responses=error_responses(401, 403, 404),
)
async def revoke_api_key(key_id: uuid.UUID, principal: Admin, ingest: IngestDep) -> Response:
    await api_keys.revoke_api_key(ingest, principal, key_id)
    return Response(status_code=204)


@router.get("/v1/auth/me", tags=["api keys"], summary="Who am I?", responses=AUTH_ERRORS)
async def me(principal: Annotated[Principal, Depends(authenticate)]) -> Me:
    scope = None if principal.datasets is None else sorted(map(uuid.UUID, principal.datasets))
    return Me(key_id=principal.key_id, name=principal.name, role=principal.role, datasets=scope)


@router.post(
    "/internal/objectstore/events",
    status_code=204,
    tags=["internal"],
    summary="Object-store notification webhook (SeaweedFS filer format)",
    description="The store POSTs one JSON document (or a list) per change; only file creations "
    "in `conveyor-landing` are used. Authenticated by `Authorization: Bearer <token>`.",
    responses=error_responses(400, 401),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def objectstore_event(
    request: Request,
    ingest: IngestDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    expected = f"Bearer {ingest.settings.objectstore_webhook_token}"
    if not authorization or not hmac.compare_digest(authorization.encode(), expected.encode()):
        raise ApiError(401, "invalid_webhook_token", "missing or wrong bearer token")
    try:
        document = json.loads(await request.body())
    except ValueError as exc:
        raise ApiError(400, "malformed_json", f"body is not JSON: {exc}") from exc
    documents = document if isinstance(document, list) else [document]
    for doc in documents:
        if not isinstance(doc, dict):
            raise ApiError(400, "malformed_notification", "each notification must be an object")
        obj = parse_filer_notification(doc)
        if obj is not None:
            try:
                await drops.record_store_notification(ingest, obj)
            except Exception:
                # The store does not retry a failed notification: list the bucket once we can.
                drops.request_reconcile(ingest)
                raise
    return Response(status_code=204)
