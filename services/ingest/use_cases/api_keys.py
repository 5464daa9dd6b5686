"""API keys: issue, list and revoke (ingest owns the key table for every service)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.ingest import repository as repo
from services.ingest.context import Ingest
from services.ingest.models import ApiKey
from services.ingest.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from shared.auth import Principal, Role, generate_api_key, hash_api_key
from shared.errors import ApiError
from shared.events import ApiKeyCreatedV1, ApiKeyRevokedV1


async def create_api_key(ingest: Ingest, principal: Principal, body: ApiKeyCreate) -> ApiKeyCreated:
    """Issue a key; the plain key is returned once and only its hash is kept."""
    key = generate_api_key()
    async with ingest.units.begin() as uow:
        record = ApiKey(
            id=uuid.uuid4(),
            name=body.name,
            role=body.role.value,
            key_hash=hash_api_key(key),
            created_by=principal.name,
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
            ),
            subject=str(record.id),
            actor=principal.name,
        )
    return ApiKeyCreated(
        id=record.id,
        name=record.name,
        role=Role(record.role),
        created_at=record.created_at,
        revoked_at=None,
        key=key,
    )


async def list_api_keys(ingest: Ingest) -> list[ApiKeyOut]:
    """Every key's metadata."""
    async with ingest.units.read() as session:
        return [
            ApiKeyOut(
                id=k.id,
                name=k.name,
                role=Role(k.role),
                created_at=k.created_at,
                revoked_at=k.revoked_at,
            )
            for k in await repo.list_api_keys(session)
        ]


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
