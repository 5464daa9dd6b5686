"""API keys: issue, list, limit to datasets and revoke (ingest owns every service's keys)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest import repository as repo
from services.ingest.context import Ingest
from services.ingest.models import ApiKey
from services.ingest.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, ApiKeyScope
from shared.auth import Principal, Role, generate_api_key, hash_api_key
from shared.errors import ApiError
from shared.events import ApiKeyCreatedV1, ApiKeyRevokedV1, ApiKeyScopeChangedV1


async def _scope_ids(
    session: AsyncSession, role: Role, slugs: Sequence[str] | None
) -> list[uuid.UUID] | None:
    """The dataset ids of a requested scope; 422 for unknown slugs or a limited admin."""
    if slugs is None:
        return None
    if role is Role.admin:
        raise ApiError(
            422, "validation_error", "an admin key manages every dataset; it cannot be limited"
        )
    found = await repo.datasets_by_slugs(session, slugs)
    unknown = sorted(set(slugs) - set(found))
    if unknown:
        raise ApiError(
            422, "unknown_dataset", f"no dataset with slug {unknown[0]!r}", {"unknown": unknown}
        )
    return sorted({found[slug].id for slug in slugs})


def _key_out(record: ApiKey, slugs: dict[uuid.UUID, str]) -> ApiKeyOut:
    scope = None if record.datasets is None else sorted(slugs[d] for d in record.datasets)
    return ApiKeyOut(
        id=record.id,
        name=record.name,
        role=Role(record.role),
        created_at=record.created_at,
        revoked_at=record.revoked_at,
        datasets=scope,
    )


async def create_api_key(ingest: Ingest, principal: Principal, body: ApiKeyCreate) -> ApiKeyCreated:
    """Issue a key; the plain key is returned once and only its hash is kept."""
    key = generate_api_key()
    async with ingest.units.begin() as uow:
        scope = await _scope_ids(uow.session, body.role, body.datasets)
        record = ApiKey(
            id=uuid.uuid4(),
            name=body.name,
            role=body.role.value,
            key_hash=hash_api_key(key),
            created_by=principal.name,
            datasets=scope,
        )
        uow.session.add(record)
        await uow.session.flush()
        await uow.session.refresh(record)
        uow.emit(
            ApiKeyCreatedV1(
                key_id=record.id,
                name=body.name,
                role=body.role.value,
                created_by=principal.name,
                datasets=scope,
            ),
            subject=str(record.id),
            actor=principal.name,
        )
    out = _key_out(record, await _slugs(ingest, scope or []))
    return ApiKeyCreated(**out.model_dump(), key=key)


async def _slugs(ingest: Ingest, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    async with ingest.units.read() as session:
        return await repo.dataset_slugs(session, ids)


async def list_api_keys(ingest: Ingest) -> list[ApiKeyOut]:
    """Every key's metadata."""
    async with ingest.units.read() as session:
        keys = await repo.list_api_keys(session)
        slugs = await repo.dataset_slugs(session, [d for k in keys for d in k.datasets or []])
    return [_key_out(k, slugs) for k in keys]


async def set_api_key_datasets(
    ingest: Ingest, principal: Principal, key_id: uuid.UUID, body: ApiKeyScope
) -> ApiKeyOut:
    """Limit a key to some datasets (or lift the limit); announced, so caches drop the key."""
    async with ingest.units.begin() as uow:
        current = await repo.api_key_by_id(uow.session, key_id)
        if current is None or current.revoked_at is not None:
            raise ApiError(404, "api_key_not_found", f"no active API key {key_id}")
        scope = await _scope_ids(uow.session, Role(current.role), body.datasets)
        record = await repo.set_api_key_datasets(uow.session, key_id, scope)
        if record is None:  # revoked meanwhile
            raise ApiError(404, "api_key_not_found", f"no active API key {key_id}")
        uow.emit(
            ApiKeyScopeChangedV1(key_id=key_id, datasets=scope, changed_by=principal.name),
            subject=str(key_id),
            actor=principal.name,
        )
        slugs = await repo.dataset_slugs(uow.session, scope or [])
    return _key_out(record, slugs)


async def revoke_api_key(ingest: Ingest, principal: Principal, key_id: uuid.UUID) -> None:
    """Revoke a key; 404 if unknown or already revoked."""
    async with ingest.units.begin() as uow:
        if not await repo.revoke_api_key(uow.session, key_id, datetime.now(UTC)):
            raise ApiError(404, "api_key_not_found", f"no active API key {key_id}")
        uow.emit(
            ApiKeyRevokedV1(key_id=key_id, revoked_by=principal.name),
            subject=str(key_id),
            actor=principal.name,
        )
