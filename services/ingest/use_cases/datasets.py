"""Datasets: create, get, list; and the slug lookup other use cases start from."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest import repository as repo
from services.ingest.context import Ingest
from services.ingest.models import Dataset
from services.ingest.schemas import DatasetCreate, DatasetOut, DatasetPage
from shared.auth import Principal
from shared.errors import ApiError
from shared.events import DatasetCreatedV1
from shared.paging import Cursor

# Remembered datasets at most: a bound on the cache, far above any real count.
CACHED_DATASETS = 10_000


async def create_dataset(ingest: Ingest, principal: Principal, body: DatasetCreate) -> DatasetOut:
    """Create a dataset; 409 if the slug is taken, 403 for a key limited to some datasets."""
    if principal.scoped:
        raise ApiError(
            403, "forbidden", "this key is limited to some datasets and cannot create datasets"
        )
    try:
        async with ingest.units.begin() as uow:
            dataset = Dataset(
                id=uuid.uuid4(), slug=body.slug, name=body.name, created_by=principal.name
            )
            uow.session.add(dataset)
            await uow.session.flush()
            await uow.session.refresh(dataset)
            uow.emit(
                DatasetCreatedV1(
                    dataset_id=dataset.id,
                    slug=dataset.slug,
                    name=dataset.name,
                    created_by=principal.name,
                ),
                subject=str(dataset.id),
                actor=principal.name,
            )
    except IntegrityError as exc:
        raise ApiError(
            409, "dataset_exists", f"a dataset with slug {body.slug!r} already exists"
        ) from exc
    return DatasetOut.model_validate(dataset, from_attributes=True)


async def find_dataset(
    ingest: Ingest, session: AsyncSession, slug: str, principal: Principal | None = None
) -> Dataset:
    """The dataset with this slug, from the cache if seen before.

    404 if there is none, or if ``principal`` may not touch it (another dataset must look
    exactly like a missing one). Without a principal (the service itself) every dataset counts.
    """
    dataset = ingest.datasets.get(slug) or await repo.dataset_by_slug(session, slug)
    if dataset is None or (principal is not None and not principal.sees(dataset.id)):
        raise ApiError(404, "dataset_not_found", f"no dataset with slug {slug!r}")
    if len(ingest.datasets) < CACHED_DATASETS:
        ingest.datasets[slug] = dataset
    return dataset


async def dataset_for(ingest: Ingest, slug: str, principal: Principal) -> Dataset:
    """:func:`find_dataset` in a session of its own, opened only when the cache misses (an
    upload's common case is a hit: no session at all)."""
    cached = ingest.datasets.get(slug)
    if cached is not None and principal.sees(cached.id):
        return cached
    async with ingest.units.read() as session:
        return await find_dataset(ingest, session, slug, principal)


async def get_dataset(ingest: Ingest, principal: Principal, slug: str) -> DatasetOut:
    """A dataset by slug."""
    return DatasetOut.model_validate(
        await dataset_for(ingest, slug, principal), from_attributes=True
    )


async def list_datasets(
    ingest: Ingest, principal: Principal, limit: int, cursor: str | None
) -> DatasetPage:
    """A page of the datasets the caller may touch."""
    after = Cursor.decode(cursor) if cursor else None
    only = None if principal.datasets is None else [uuid.UUID(d) for d in principal.datasets]
    async with ingest.units.read() as session:
        rows = await repo.list_datasets(session, limit + 1, after, only)
    items = [DatasetOut.model_validate(d, from_attributes=True) for d in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = Cursor(rows[limit - 1].created_at, rows[limit - 1].id).encode()
    return DatasetPage(items=items, next_cursor=next_cursor)
