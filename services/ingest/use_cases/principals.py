"""Who an API key belongs to: ingest answers from its own key table (see :mod:`shared.auth`)."""

from __future__ import annotations

from dataclasses import dataclass

from services.ingest import repository as repo
from services.ingest.context import Ingest
from shared.auth import Principal, Role, hash_api_key


async def resolve_principal(ingest: Ingest, key: str) -> Principal | None:
    """The principal of a stored, unrevoked key; None for any other key."""
    async with ingest.units.read() as session:
        record = await repo.api_key_by_hash(session, hash_api_key(key))
    if record is None:
        return None
    scope = None if record.datasets is None else frozenset(str(d) for d in record.datasets)
    return Principal(
        key_id=str(record.id), name=record.name, role=Role(record.role), datasets=scope
    )


@dataclass(frozen=True)
class StoredKeys:
    """Ingest's :class:`~shared.auth.PrincipalResolver` (``app.state.principal_resolver``)."""

    ingest: Ingest

    async def resolve(self, key: str) -> Principal | None:
        """See :func:`resolve_principal`."""
        return await resolve_principal(self.ingest, key)
