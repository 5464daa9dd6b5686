"""Dataset versions: freeze a dataset's accepted labels into an immutable, numbered version.

A version copies everything its exports need (the labels, the image's sha256, name and size,
the ontology's classes) at the moment of freezing, so it exports the same bytes however the
accepted labels move on. Its content hash is the sha256 of a canonical manifest of those
copies, in asset-id order: equal contents, equal hash, and a freeze that finds its content
already frozen returns that version instead of numbering a new one.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.qc.context import Qc
from services.qc.models import KnownDataset
from services.qc.repository import versions as repo
from services.qc.repository.versions import DatasetVersion
from shared.auth import Principal
from shared.errors import ApiError
from shared.events import DatasetVersionCreatedV1
from shared.paging import Cursor

MANIFEST_FORMAT = "conveyor-dataset-version/1"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_EXTENSION = re.compile(r"\.([A-Za-z0-9]{1,10})$")
MAX_STEM = 100


@dataclass(frozen=True)
class VersionView:
    """A version with its dataset's slug; ``created`` is False when a freeze found it."""

    version: DatasetVersion
    dataset_slug: str
    created: bool = False


# ------------------------------------------------------------------------------ pure parts


def export_name(sha256: str, filename: str, taken: set[str], asset_id: uuid.UUID) -> str:
    """The image's file name inside exports: ``<sha256[:12]>_<stem>.<ext>``, unique in the
    version (``taken`` holds the case-folded stems used so far and is updated).

    The stem keeps only ``[A-Za-z0-9_-]`` (a file name never becomes a path, and names
    without inner dots sort like their YOLO label paths, so an export's files come out in
    manifest order); two stems equal but for case get the asset id too.
    """
    base = re.split(r"[/\\]", filename)[-1]
    found = _EXTENSION.search(base)
    extension = f".{found.group(1)}" if found else ""
    cleaned = _UNSAFE.sub("_", base[: found.start()] if found else base).strip("_")
    stem = f"{sha256[:12]}_{cleaned[:MAX_STEM] or 'image'}"
    candidates = [stem, f"{stem}_{asset_id.hex[:8]}", f"{stem}_{asset_id.hex}"]
    for candidate in candidates:
        if candidate.casefold() not in taken:
            taken.add(candidate.casefold())
            return candidate + extension
    raise ValueError(f"no unique export name for asset {asset_id}")


def merged_classes(classes_by_version: Mapping[tuple[uuid.UUID, int], Sequence[str]]) -> list[str]:
    """Categories of a version whose labels come from several ontology versions: the newest
    version's classes in its order, then classes only older ones had (labels made before a
    class was removed keep it)."""
    ordered = sorted(classes_by_version.items(), key=lambda kv: (-kv[0][1], str(kv[0][0])))
    merged: dict[str, None] = {}
    for _, classes in ordered:
        merged.update(dict.fromkeys(classes))
    return list(merged)


def item_line(item: Mapping[str, Any]) -> bytes:
    """One item of the canonical manifest: compact JSON with sorted keys, UTF-8, newline."""
    record = {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in item.items()}
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def content_hash(items_digest: str, classes: Sequence[str]) -> str:
    """The version's hash: its classes and the digest of its item lines."""
    head = {"format": MANIFEST_FORMAT, "classes": list(classes), "items_sha256": items_digest}
    return hashlib.sha256(item_line(head)).hexdigest()


# ------------------------------------------------------------------------------ use cases


async def freeze(qc: Qc, principal: Principal, ref: str) -> VersionView:
    """Freeze the dataset's accepted labels now: a new version (``created``), or the version
    that already holds exactly this content. 404 for an unknown dataset, 409 when nothing is
    accepted yet or an ontology version is unknown to QC."""
    async with qc.units.begin() as uow:
        session = uow.session
        dataset = await visible_dataset(session, principal, ref)
        await repo.lock_dataset(session, dataset.id)
        version_id = uuid.uuid4()
        # the items are written as they are read; a content frozen before is rolled back
        savepoint = await session.begin_nested()
        frozen = await _copy_items(session, dataset.id, version_id)
        if not frozen.items:
            raise ApiError(
                409,
                "nothing_accepted",
                f"dataset {dataset.slug!r} has no accepted labels to freeze",
                {"left_out": frozen.left_out},
            )
        known = await repo.ontology_classes(session, sorted(frozen.ontologies))
        missing = sorted(frozen.ontologies - known.keys())
        if missing:
            raise ApiError(
                409,
                "ontology_unknown",
                "labels use ontology versions QC has not heard of yet",
                {"ontology_versions": [{"ontology_id": str(o), "version": v} for o, v in missing]},
            )
        classes = merged_classes(known)
        digest = content_hash(frozen.digest, classes)
        existing = await repo.version_with_hash(session, dataset.id, digest)
        if existing is not None:
            await savepoint.rollback()
            return VersionView(existing, dataset.slug, created=False)
        await savepoint.commit()
        version = DatasetVersion(
            id=version_id,
            dataset_id=dataset.id,
            number=await repo.next_number(session, dataset.id),
            manifest_hash=digest,
            item_count=frozen.items,
            shape_count=frozen.shapes,
            left_out=frozen.left_out,
            classes=classes,
            created_by=principal.name,
            created_at=datetime.now(UTC),
        )
        await repo.add_version(session, version)
        uow.emit(
            DatasetVersionCreatedV1(
                dataset_id=dataset.id,
                dataset_slug=dataset.slug,
                version=version.number,
                item_count=version.item_count,
                shape_count=version.shape_count,
                manifest_hash=digest,
                created_by=principal.name,
            ),
            subject=str(dataset.id),
            actor=principal.name,
        )
    return VersionView(version, dataset.slug, created=True)


@dataclass
class _Frozen:
    digest: str = ""
    items: int = 0
    shapes: int = 0
    left_out: int = 0
    ontologies: frozenset[tuple[uuid.UUID, int]] = frozenset()


async def _copy_items(
    session: AsyncSession, dataset_id: uuid.UUID, version_id: uuid.UUID
) -> _Frozen:
    """Copy the dataset's accepted labels into the version a page at a time, hashing the
    canonical lines as they go. Assets QC knows no sha256 or size of are left out (counted)."""
    frozen = _Frozen()
    lines = hashlib.sha256()
    taken: set[str] = set()
    ontologies: set[tuple[uuid.UUID, int]] = set()
    after: uuid.UUID | None = None
    while True:
        page = await repo.accepted_page(session, dataset_id, after)
        rows: list[dict[str, Any]] = []
        for found in page:
            if not found.sha256 or not found.width or not found.height:
                frozen.left_out += 1
                continue
            filename = found.filename or ""
            item = {
                "asset_id": found.asset_id,
                "file_name": export_name(found.sha256, filename, taken, found.asset_id),
                "sha256": found.sha256,
                "filename": filename,
                "width": found.width,
                "height": found.height,
                "ontology_id": found.ontology_id,
                "ontology_version": found.ontology_version,
                "shapes": found.shapes,
            }
            lines.update(item_line(item) + b"\n")
            ontologies.add((found.ontology_id, found.ontology_version))
            frozen.items += 1
            frozen.shapes += len(found.shapes)
            rows.append({**item, "version_id": version_id})
        await repo.add_items(session, rows)
        if len(page) < repo.PAGE:
            break
        after = page[-1].asset_id
    frozen.digest = lines.hexdigest()
    frozen.ontologies = frozenset(ontologies)
    return frozen


async def visible_dataset(session: AsyncSession, principal: Principal, ref: str) -> KnownDataset:
    """The dataset by slug or id if the caller may see it; 404 otherwise."""
    dataset = await repo.dataset_by_slug_or_id(session, ref)
    if dataset is None or not principal.sees(dataset.id):
        raise ApiError(404, "dataset_not_found", f"no dataset {ref!r}")
    return dataset


async def list_versions(
    qc: Qc, principal: Principal, ref: str, limit: int, cursor: str | None
) -> tuple[list[VersionView], str | None]:
    """A page of the dataset's versions, oldest first, and the cursor of the next page."""
    after = Cursor.decode(cursor) if cursor else None
    async with qc.units.read() as session:
        dataset = await visible_dataset(session, principal, ref)
        rows = await repo.list_versions(session, dataset.id, limit + 1, after)
    next_cursor = None
    if len(rows) > limit:
        next_cursor = Cursor(rows[limit - 1].created_at, rows[limit - 1].id).encode()
    return [VersionView(v, dataset.slug) for v in rows[:limit]], next_cursor


async def get_version(qc: Qc, principal: Principal, ref: str, number: int) -> VersionView:
    """Version ``number`` of the dataset; 404 if either is unknown."""
    async with qc.units.read() as session:
        dataset = await visible_dataset(session, principal, ref)
        version = await repo.version_by_number(session, dataset.id, number)
    if version is None:
        raise version_not_found(dataset.slug, number)
    return VersionView(version, dataset.slug)


def version_not_found(slug: str, number: int) -> ApiError:
    """The 404 of a version number a dataset does not have."""
    return ApiError(404, "version_not_found", f"dataset {slug!r} has no version {number}")
