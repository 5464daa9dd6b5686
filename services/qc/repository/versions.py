"""Dataset versions, their frozen items, and exports: tables and every statement on them.

The tables are declared here rather than in ``services/qc/models.py`` because nothing else in
QC reads them; they share its metadata (schema ``qc``), migration 0003 creates them.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import BigInteger, DateTime, Integer, String, Table, Text, func, or_, select, tuple_
from sqlalchemy import update as sql_update
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from services.qc.models import AcceptedLabels, Base, KnownAsset, KnownDataset, OntologyVersion
from shared.paging import Cursor

PAGE = 1000  # rows per round trip when a version is read or written in full


class DatasetVersion(Base):
    """A frozen, numbered set of a dataset's accepted labels. Never updated once written."""

    __tablename__ = "dataset_versions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    dataset_id: Mapped[uuid.UUID] = mapped_column()
    number: Mapped[int] = mapped_column(Integer)
    manifest_hash: Mapped[str] = mapped_column(String(64))
    item_count: Mapped[int] = mapped_column(Integer)
    shape_count: Mapped[int] = mapped_column(Integer)
    left_out: Mapped[int] = mapped_column(Integer)
    classes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class VersionItem(Base):
    """One image of a version: what its exports need, copied at freeze time."""

    __tablename__ = "dataset_version_items"

    version_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    asset_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    file_name: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(Text)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    ontology_id: Mapped[uuid.UUID] = mapped_column()
    ontology_version: Mapped[int] = mapped_column(Integer)
    shapes: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)


VERSION_ITEMS = cast(Table, VersionItem.__table__)


class Export(Base):
    """An export of a version, built in the background (``state`` queued|running|done|failed).

    ``claimed_until``: while running, the builder's lease; a builder that died leaves it to run
    out and another takes the export over.
    """

    __tablename__ = "exports"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    version_id: Mapped[uuid.UUID] = mapped_column()
    dataset_id: Mapped[uuid.UUID] = mapped_column()
    format: Mapped[str] = mapped_column(String(8))
    images: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(8))
    done: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    object_key: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(BigInteger)
    annotation_count: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# ------------------------------------------------------------------------------- datasets


async def dataset_by_slug_or_id(session: AsyncSession, ref: str) -> KnownDataset | None:
    """The mirrored dataset with this slug (or id)."""
    match = KnownDataset.slug == ref
    with contextlib.suppress(ValueError):  # not an id: a slug only
        match = or_(match, KnownDataset.id == uuid.UUID(ref))
    return (await session.execute(select(KnownDataset).where(match))).scalars().first()


async def dataset_by_id(session: AsyncSession, dataset_id: uuid.UUID) -> KnownDataset | None:
    """The mirrored dataset with this id."""
    return await session.get(KnownDataset, dataset_id)


async def lock_dataset(session: AsyncSession, dataset_id: uuid.UUID) -> None:
    """Hold the dataset's mirror row: freezes of one dataset number their versions in turn."""
    await session.execute(
        select(KnownDataset.id).where(KnownDataset.id == dataset_id).with_for_update()
    )


# ------------------------------------------------------------------------------- freezing


class AcceptedRow(NamedTuple):
    """An asset's accepted labels with what QC's asset mirror knows of it (None: nothing)."""

    asset_id: uuid.UUID
    ontology_id: uuid.UUID
    ontology_version: int
    shapes: list[dict[str, Any]]
    sha256: str | None
    filename: str | None
    width: int | None
    height: int | None


async def accepted_page(
    session: AsyncSession, dataset_id: uuid.UUID, after: uuid.UUID | None
) -> list[AcceptedRow]:
    """A page of the dataset's accepted labels by asset id, with the assets' mirror facts."""
    query = (
        select(
            AcceptedLabels.asset_id,
            AcceptedLabels.ontology_id,
            AcceptedLabels.ontology_version,
            AcceptedLabels.shapes,
            KnownAsset.sha256,
            KnownAsset.filename,
            KnownAsset.width,
            KnownAsset.height,
        )
        .outerjoin(KnownAsset, KnownAsset.id == AcceptedLabels.asset_id)
        .where(AcceptedLabels.dataset_id == dataset_id)
        .order_by(AcceptedLabels.asset_id)
        .limit(PAGE)
    )
    if after is not None:
        query = query.where(AcceptedLabels.asset_id > after)
    return [AcceptedRow(*row) for row in (await session.execute(query)).all()]


async def ontology_classes(
    session: AsyncSession, pinned: Sequence[tuple[uuid.UUID, int]]
) -> dict[tuple[uuid.UUID, int], list[str]]:
    """Class names of these ontology versions (the ones QC has heard of)."""
    if not pinned:
        return {}
    query = select(
        OntologyVersion.ontology_id, OntologyVersion.version, OntologyVersion.classes
    ).where(tuple_(OntologyVersion.ontology_id, OntologyVersion.version).in_(list(pinned)))
    return {(o, v): list(c) for o, v, c in (await session.execute(query)).all()}


async def add_version(session: AsyncSession, version: DatasetVersion) -> None:
    """Write the version row (items follow with :func:`add_items`)."""
    session.add(version)
    await session.flush()


async def add_items(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Write a batch of a version's items."""
    if rows:
        # the table, not the class: no ORM bookkeeping for rows that are only written
        await session.execute(insert(VERSION_ITEMS), list(rows))


async def next_number(session: AsyncSession, dataset_id: uuid.UUID) -> int:
    """The number the dataset's next version gets (1 for the first)."""
    query = select(func.coalesce(func.max(DatasetVersion.number), 0)).where(
        DatasetVersion.dataset_id == dataset_id
    )
    return int((await session.execute(query)).scalar_one()) + 1


async def version_with_hash(
    session: AsyncSession, dataset_id: uuid.UUID, manifest_hash: str
) -> DatasetVersion | None:
    """The dataset's version with exactly this content, if one was frozen before."""
    query = select(DatasetVersion).where(
        DatasetVersion.dataset_id == dataset_id, DatasetVersion.manifest_hash == manifest_hash
    )
    return (await session.execute(query)).scalar_one_or_none()


# ------------------------------------------------------------------------------- reading


async def version_by_number(
    session: AsyncSession, dataset_id: uuid.UUID, number: int
) -> DatasetVersion | None:
    """Version ``number`` of the dataset."""
    query = select(DatasetVersion).where(
        DatasetVersion.dataset_id == dataset_id, DatasetVersion.number == number
    )
    return (await session.execute(query)).scalar_one_or_none()


async def version_by_id(session: AsyncSession, version_id: uuid.UUID) -> DatasetVersion | None:
    """The version with this id."""
    return await session.get(DatasetVersion, version_id)


async def list_versions(
    session: AsyncSession, dataset_id: uuid.UUID, limit: int, after: Cursor | None
) -> list[DatasetVersion]:
    """A page of the dataset's versions, oldest first."""
    query = (
        select(DatasetVersion)
        .where(DatasetVersion.dataset_id == dataset_id)
        .order_by(DatasetVersion.created_at, DatasetVersion.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(
            tuple_(DatasetVersion.created_at, DatasetVersion.id) > (after.created_at, after.id)
        )
    return list((await session.execute(query)).scalars())


class ItemRow(NamedTuple):
    """What an export reads of an item."""

    file_name: str
    sha256: str
    width: int
    height: int
    shapes: list[dict[str, Any]]


async def items_by_file_name(
    session: AsyncSession, version_id: uuid.UUID
) -> AsyncIterator[ItemRow]:
    """Every item of a version in file-name order (byte order, as export paths sort), a page
    at a time so a large version is never held whole."""
    name = VersionItem.file_name.collate("C")
    after: str | None = None
    while True:
        query = (
            select(
                VersionItem.file_name,
                VersionItem.sha256,
                VersionItem.width,
                VersionItem.height,
                VersionItem.shapes,
            )
            .where(VersionItem.version_id == version_id)
            .order_by(name)
            .limit(PAGE)
        )
        if after is not None:
            query = query.where(name > after)
        page = [ItemRow(*row) for row in (await session.execute(query)).all()]
        for item in page:
            yield item
        if len(page) < PAGE:
            return
        after = page[-1].file_name


# ------------------------------------------------------------------------------- exports


async def add_export(session: AsyncSession, export: Export) -> None:
    """Queue an export."""
    session.add(export)
    await session.flush()


async def export_by_id(session: AsyncSession, export_id: uuid.UUID) -> Export | None:
    """The export with this id."""
    return await session.get(Export, export_id)


async def claim_export(session: AsyncSession, lease_until: datetime) -> Export | None:
    """Take the oldest export waiting to be built (queued, or running under a lapsed lease),
    marking it running under a lease; None when there is nothing to build."""
    query = (
        select(Export)
        .where(
            or_(
                Export.state == "queued",
                (Export.state == "running") & (Export.claimed_until < func.now()),
            )
        )
        .order_by(Export.created_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    export = (await session.execute(query)).scalar_one_or_none()
    if export is None:
        return None
    export.state = "running"
    export.attempts += 1
    export.done = 0
    export.claimed_until = lease_until
    export.started_at = datetime.now(UTC)
    await session.flush()
    return export


async def record_progress(
    session: AsyncSession, export_id: uuid.UUID, attempt: int, done: int, lease_until: datetime
) -> None:
    """Progress of a running build, renewing its lease (only the claim that holds it)."""
    await session.execute(
        sql_update(Export)
        .where(Export.id == export_id, Export.attempts == attempt, Export.state == "running")
        .values(done=done, claimed_until=lease_until)
    )


async def finish_export(
    session: AsyncSession, export_id: uuid.UUID, attempt: int, **values: Any
) -> None:
    """Record how the claim ``attempt`` ended (a later claim's record is left alone)."""
    await session.execute(
        sql_update(Export)
        .where(Export.id == export_id, Export.attempts == attempt, Export.state == "running")
        .values(claimed_until=None, **values)
    )
