"""Vendors: who labels, how to reach them, their credentials (key hash and HMAC secret)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.labeling_dispatch.models import Vendor
from shared.paging import Cursor


async def insert_vendor(session: AsyncSession, vendor: Vendor) -> Vendor:
    """Add a vendor; the unique name or key hash raises IntegrityError at the flush."""
    session.add(vendor)
    await session.flush()
    return vendor


async def vendor_by_id(session: AsyncSession, vendor_id: uuid.UUID) -> Vendor | None:
    """The vendor with this id."""
    return await session.get(Vendor, vendor_id)


async def vendor_by_name(session: AsyncSession, name: str) -> Vendor | None:
    """The vendor with this name."""
    query = select(Vendor).where(Vendor.name == name)
    return (await session.execute(query)).scalar_one_or_none()


async def vendor_by_key_hash(session: AsyncSession, key_hash: str) -> Vendor | None:
    """The vendor whose API key hashes to ``key_hash``."""
    query = select(Vendor).where(Vendor.api_key_hash == key_hash)
    return (await session.execute(query)).scalar_one_or_none()


async def vendors_by_ids(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Vendor]:
    """The vendors with these ids, by id (unknown ids are missing from the answer)."""
    if not ids:
        return {}
    rows = (await session.execute(select(Vendor).where(Vendor.id.in_(ids)))).scalars()
    return {v.id: v for v in rows}


async def list_vendors(session: AsyncSession, limit: int, after: Cursor | None) -> list[Vendor]:
    """A page of vendors, oldest first."""
    query = select(Vendor).order_by(Vendor.created_at, Vendor.id).limit(limit)
    if after is not None:
        query = query.where(tuple_(Vendor.created_at, Vendor.id) > (after.created_at, after.id))
    return list((await session.execute(query)).scalars())


async def update_vendor(
    session: AsyncSession, vendor_id: uuid.UUID, values: dict[str, Any]
) -> None:
    """Change some of a vendor's columns."""
    await session.execute(update(Vendor).where(Vendor.id == vendor_id).values(**values))
