"""Asset queries: one asset with a download URL, a dataset's assets, which hashes it has."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from services.ingest import repository as repo
from services.ingest.context import Ingest
from services.ingest.models import Asset
from services.ingest.schemas import AssetDetail, AssetOut, AssetPage
from services.ingest.use_cases.datasets import find_dataset
from shared.auth import Principal
from shared.errors import ApiError
from shared.paging import Cursor


def asset_out(asset: Asset, dataset_slug: str, duplicate: bool = False) -> AssetOut:
    """The API form of an asset."""
    return AssetOut(
        id=asset.id,
        dataset_slug=dataset_slug,
        filename=asset.filename,
        media_type=asset.media_type,
        size_bytes=asset.size_bytes,
        sha256=asset.sha256,
        source=asset.source,
        uploaded_by=asset.uploaded_by,
        tags=list(asset.tags or []),
        created_at=asset.created_at,
        parent_asset_id=asset.parent_asset_id,
        frame_time_seconds=asset.frame_time_seconds,
        duplicate=duplicate,
    )


async def get_asset(ingest: Ingest, principal: Principal, asset_id: uuid.UUID) -> AssetDetail:
    """An asset with a fresh download URL (404 for an asset of a dataset the key may not see)."""
    async with ingest.units.read() as session:
        row = await repo.asset_with_dataset(session, asset_id)
    if row is None or not principal.sees(row[0].dataset_id):
        raise ApiError(404, "asset_not_found", f"no asset {asset_id}")
    asset, slug = row
    ttl = timedelta(seconds=ingest.settings.download_url_ttl_seconds)
    return AssetDetail(
        **asset_out(asset, slug).model_dump(),
        download_url=ingest.store.presigned_get(asset.bucket, asset.object_key, ttl),
        download_url_expires_at=datetime.now(UTC) + ttl,
    )


async def list_assets(
    ingest: Ingest,
    principal: Principal,
    slug: str,
    *,
    limit: int,
    cursor: str | None,
    media_type: str | None,
    source: str | None,
    tag: str | None,
    sha256: str | None,
) -> AssetPage:
    """A page of a dataset's assets."""
    after = Cursor.decode(cursor) if cursor else None
    async with ingest.units.read() as session:
        dataset = await find_dataset(ingest, session, slug, principal)
        rows = await repo.list_assets(
            session,
            dataset.id,
            limit=limit + 1,
            after=after,
            media_type=media_type,
            source=source,
            tag=tag,
            sha256=sha256,
        )
    items = [asset_out(a, slug) for a in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = Cursor(rows[limit - 1].created_at, rows[limit - 1].id).encode()
    return AssetPage(items=items, next_cursor=next_cursor)


async def lookup_hashes(
    ingest: Ingest, principal: Principal, slug: str, hashes: list[str]
) -> dict[str, uuid.UUID]:
    """Which of these hashes the dataset already has."""
    async with ingest.units.read() as session:
        dataset = await find_dataset(ingest, session, slug, principal)
        return await repo.known_hashes(session, dataset.id, hashes)
