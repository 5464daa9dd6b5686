"""The slug projection: which dataset each slug names (the API addresses datasets by slug)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from services.clean import repository as repo
from services.clean.context import Clean
from shared.auth import Principal
from shared.errors import ApiError
from shared.events import AssetIngestedV1, DatasetCreatedV1
from shared.routing import Event


async def remember_dataset(clean: Clean, event: Event[DatasetCreatedV1]) -> None:
    """Keep the slug of a new dataset (idempotent, so a redelivery needs no inbox claim)."""
    async with clean.units.begin() as uow:
        await repo.remember_dataset(uow.session, event.payload.dataset_id, event.payload.slug)


async def remember_slugs(
    clean: Clean, session: AsyncSession, assets: Iterable[AssetIngestedV1]
) -> set[uuid.UUID]:
    """Record the slugs of the assets' datasets this process has not recorded yet (an asset
    may arrive before its dataset.created); the ids recorded, for the caller to mark known
    once its transaction commits."""
    recorded: set[uuid.UUID] = set()
    for asset in assets:
        if asset.dataset_id not in clean.known_datasets and asset.dataset_id not in recorded:
            await repo.remember_dataset(session, asset.dataset_id, asset.dataset_slug)
            recorded.add(asset.dataset_id)
    return recorded


async def dataset_of(
    session: AsyncSession, slug: str, principal: Principal | None = None
) -> uuid.UUID:
    """The id of the dataset with this slug; 404 if ingest has not announced it, or if
    ``principal`` may not touch it (another dataset must look exactly like a missing one)."""
    ident = await repo.dataset_id(session, slug)
    if ident is None or (principal is not None and not principal.sees(ident)):
        raise ApiError(404, "dataset_not_found", f"no dataset with slug {slug!r} seen yet")
    return ident
