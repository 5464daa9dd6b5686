"""All of ingest's queries."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Double,
    Text,
    Uuid,
    bindparam,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from services.ingest.models import SCHEMA, ApiKey, Asset, Dataset, outbox
from shared.outbox import EVENT_PARAMS, guarded_insert
from shared.paging import Cursor
from shared.uow import SingleStatement


async def dataset_by_slug(session: AsyncSession, slug: str) -> Dataset | None:
    """The dataset with this slug."""
    return (await session.execute(select(Dataset).where(Dataset.slug == slug))).scalar_one_or_none()


async def datasets_by_slugs(session: AsyncSession, slugs: Sequence[str]) -> dict[str, Dataset]:
    """The datasets with these slugs, by slug (unknown slugs are missing from the answer)."""
    if not slugs:
        return {}
    query = select(Dataset).where(Dataset.slug.in_(set(slugs)))
    return {d.slug: d for d in (await session.execute(query)).scalars()}


async def dataset_slugs(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The slugs of these datasets, by id."""
    if not ids:
        return {}
    query = select(Dataset.id, Dataset.slug).where(Dataset.id.in_(set(ids)))
    return {ident: slug for ident, slug in (await session.execute(query)).all()}


async def list_datasets(
    session: AsyncSession,
    limit: int,
    after: Cursor | None,
    only: Sequence[uuid.UUID] | None = None,
) -> Sequence[Dataset]:
    """Datasets in creation order, ``limit`` of them after ``after`` (among ``only``, if given)."""
    query = select(Dataset).order_by(Dataset.created_at, Dataset.id).limit(limit)
    if only is not None:
        query = query.where(Dataset.id.in_(list(only)))
    if after:
        query = query.where(tuple_(Dataset.created_at, Dataset.id) > (after.created_at, after.id))
    return (await session.execute(query)).scalars().all()


async def asset_by_hash(session: AsyncSession, dataset_id: uuid.UUID, sha256: str) -> Asset | None:
    """The dataset's asset with these bytes."""
    query = select(Asset).where(Asset.dataset_id == dataset_id, Asset.sha256 == sha256)
    return (await session.execute(query)).scalar_one_or_none()


async def assets_by_hashes(
    session: AsyncSession, dataset_id: uuid.UUID, hashes: list[str]
) -> dict[str, Asset]:
    """The dataset's assets with any of these bytes, by sha256."""
    if not hashes:
        return {}
    query = select(Asset).where(Asset.dataset_id == dataset_id, Asset.sha256.in_(set(hashes)))
    return {asset.sha256: asset for asset in (await session.execute(query)).scalars()}


async def insert_assets_skipping_known(
    write: SingleStatement, assets: Sequence[Asset]
) -> set[uuid.UUID]:
    """Insert new asset rows and the events staged for them, in one statement that commits by
    itself; rows whose bytes their dataset has (committed, or earlier in ``assets``) are
    skipped with their events. The ids of the rows inserted."""
    if not assets:
        return set()
    columns: dict[str, Any] = {
        column: [getattr(a, column) for a in assets] for column in _ASSET_ARRAYS
    }
    columns["tags"] = [json.dumps(a.tags or []) for a in assets]
    columns.update(write.event_parameters())
    return set((await write.session.execute(_INSERT_ASSETS, columns)).scalars())


# The columns an upload fills, each sent as one array (a row's tags as JSON text: an array of
# arrays must be rectangular).
_ASSET_ARRAYS: dict[str, TypeEngine[Any]] = {
    "id": Uuid(),
    "dataset_id": Uuid(),
    "filename": Text(),
    "media_type": Text(),
    "size_bytes": BigInteger(),
    "sha256": Text(),
    "source": Text(),
    "uploaded_by": Text(),
    "tags": Text(),
    "bucket": Text(),
    "object_key": Text(),
    "parent_asset_id": Uuid(),
    "frame_time_seconds": Double(),
    "created_at": DateTime(timezone=True),
}
_NAMES = ", ".join(_ASSET_ARRAYS)
_VALUES = ", ".join(
    "ARRAY(SELECT jsonb_array_elements_text(CAST(tags AS jsonb)))" if name == "tags" else name
    for name in _ASSET_ARRAYS
)
# Any number of rows and their events as one statement over arrays. Textual, so it is
# compiled once: SQLAlchemy's PostgreSQL INSERT ... ON CONFLICT construct has no cache key.
_INSERT_ASSETS = text(
    f"WITH written AS (INSERT INTO {SCHEMA}.assets ({_NAMES}) SELECT {_VALUES} "  # noqa: S608
    f"FROM unnest({', '.join(':' + name for name in _ASSET_ARRAYS)}) AS rows ({_NAMES}) "
    "ON CONFLICT ON CONSTRAINT assets_dataset_sha256 DO NOTHING RETURNING id), "
    f"events AS ({guarded_insert(outbox, 'written')}) "
    "SELECT id FROM written"
).bindparams(
    *(bindparam(name, type_=ARRAY(kind)) for name, kind in _ASSET_ARRAYS.items()),
    *EVENT_PARAMS,
)


async def assets_by_dataset_and_hash(
    session: AsyncSession, keys: set[tuple[uuid.UUID, str]]
) -> dict[tuple[uuid.UUID, str], Asset]:
    """The assets with these (dataset id, sha256), by that pair."""
    if not keys:
        return {}
    query = select(Asset).where(tuple_(Asset.dataset_id, Asset.sha256).in_(list(keys)))
    return {(a.dataset_id, a.sha256): a for a in (await session.execute(query)).scalars()}


async def asset_with_dataset(
    session: AsyncSession, asset_id: uuid.UUID
) -> tuple[Asset, str] | None:
    """An asset and its dataset's slug."""
    query = (
        select(Asset, Dataset.slug)
        .join(Dataset, Dataset.id == Asset.dataset_id)
        .where(Asset.id == asset_id)
    )
    row = (await session.execute(query)).first()
    return (row[0], row[1]) if row else None


async def list_assets(
    session: AsyncSession,
    dataset_id: uuid.UUID,
    *,
    limit: int,
    after: Cursor | None,
    media_type: str | None,
    source: str | None,
    tag: str | None,
    sha256: str | None,
) -> Sequence[Asset]:
    """A page of a dataset's assets in arrival order, filtered."""
    query = (
        select(Asset)
        .where(Asset.dataset_id == dataset_id)
        .order_by(Asset.created_at, Asset.id)
        .limit(limit)
    )
    if after:
        query = query.where(tuple_(Asset.created_at, Asset.id) > (after.created_at, after.id))
    if media_type:
        query = query.where(Asset.media_type == media_type)
    if source:
        query = query.where(Asset.source == source)
    if tag:
        query = query.where(Asset.tags.contains([tag]))
    if sha256:
        query = query.where(Asset.sha256 == sha256)
    return (await session.execute(query)).scalars().all()


async def known_hashes(
    session: AsyncSession, dataset_id: uuid.UUID, hashes: Sequence[str]
) -> dict[str, uuid.UUID]:
    """Which of ``hashes`` are assets of the dataset, with their ids."""
    if not hashes:
        return {}
    query = select(Asset.sha256, Asset.id).where(
        Asset.dataset_id == dataset_id, Asset.sha256.in_(list(hashes))
    )
    return {sha: ident for sha, ident in (await session.execute(query)).all()}


async def api_key_by_hash(session: AsyncSession, key_hash: str) -> ApiKey | None:
    """The unrevoked key with this hash."""
    query = select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    return (await session.execute(query)).scalar_one_or_none()


async def api_key_by_id(session: AsyncSession, key_id: uuid.UUID) -> ApiKey | None:
    """A key by id, revoked or not."""
    return await session.get(ApiKey, key_id)


async def list_api_keys(session: AsyncSession) -> Sequence[ApiKey]:
    """Every key, newest first."""
    return (
        (await session.execute(select(ApiKey).order_by(ApiKey.created_at.desc()))).scalars().all()
    )


async def set_api_key_datasets(
    session: AsyncSession, key_id: uuid.UUID, datasets: list[uuid.UUID] | None
) -> ApiKey | None:
    """Change the datasets an unrevoked key may touch; None if no such key."""
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(datasets=datasets)
        .returning(ApiKey)
    )
    return result.scalar_one_or_none()


async def revoke_api_key(session: AsyncSession, key_id: uuid.UUID, when: datetime) -> bool:
    """Revoke a key; False if no such unrevoked key."""
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=when)
        .returning(ApiKey.id)
    )
    return result.first() is not None
