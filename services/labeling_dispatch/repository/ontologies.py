"""Ontologies and their immutable versions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.labeling_dispatch.models import Ontology, OntologyVersion
from shared.paging import Cursor


async def insert_ontology(session: AsyncSession, ontology: Ontology) -> Ontology:
    """Add an ontology; a taken name raises IntegrityError at the flush."""
    session.add(ontology)
    await session.flush()
    await session.refresh(ontology)
    return ontology


async def insert_version(session: AsyncSession, version: OntologyVersion) -> OntologyVersion:
    """Add a version (the database refuses to change or delete it afterwards)."""
    session.add(version)
    await session.flush()
    await session.refresh(version)
    return version


async def ontology_by(
    session: AsyncSession, ref: uuid.UUID | str, *, for_update: bool = False
) -> Ontology | None:
    """The ontology with this id (a UUID) or name (a str); ``for_update`` locks it (to number
    its next version)."""
    where = Ontology.id == ref if isinstance(ref, uuid.UUID) else Ontology.name == ref
    query = select(Ontology).where(where)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def list_ontologies(
    session: AsyncSession, limit: int, after: Cursor | None
) -> Sequence[Ontology]:
    """A page of ontologies, oldest first."""
    query = select(Ontology).order_by(Ontology.created_at, Ontology.id).limit(limit)
    if after is not None:
        query = query.where(tuple_(Ontology.created_at, Ontology.id) > (after.created_at, after.id))
    return (await session.execute(query)).scalars().all()


async def version(
    session: AsyncSession, ontology_id: uuid.UUID, number: int
) -> OntologyVersion | None:
    """Version ``number`` of the ontology."""
    return await session.get(OntologyVersion, (ontology_id, number))


async def versions_of(session: AsyncSession, ontology_id: uuid.UUID) -> Sequence[OntologyVersion]:
    """Every version of the ontology, oldest first."""
    query = (
        select(OntologyVersion)
        .where(OntologyVersion.ontology_id == ontology_id)
        .order_by(OntologyVersion.version)
    )
    return (await session.execute(query)).scalars().all()
