"""Ontologies: create one, add a version, read them; and the pinned spec every annotation is
checked against.

A version never changes once written (the database refuses UPDATE and DELETE on it), so jobs
can pin one and the spec of a pinned version can be cached for the life of the process.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.labeling_dispatch.context import Labeling
from services.labeling_dispatch.domain.ontology import OntologySpec
from services.labeling_dispatch.models import Ontology, OntologyVersion
from services.labeling_dispatch.repository import ontologies as repo
from shared.auth import Principal
from shared.errors import ApiError
from shared.events import OntologyVersionCreatedV1
from shared.paging import Cursor
from shared.uow import UnitOfWork

# Pinned specs kept in memory at most (a bound far above any real count of pinned versions).
CACHED_SPECS = 1024
_specs: OrderedDict[tuple[uuid.UUID, int], OntologySpec] = OrderedDict()


@dataclass(frozen=True)
class VersionOf:
    """One version with the ontology it belongs to (whose name it is read under)."""

    ontology: Ontology
    version: OntologyVersion


@dataclass(frozen=True)
class OntologyDetail:
    """An ontology, its latest version and every version it has had."""

    ontology: Ontology
    latest: OntologyVersion
    versions: list[OntologyVersion]


def _require_unscoped(principal: Principal) -> None:
    """Ontologies span datasets: a key limited to some datasets may not write them."""
    if principal.scoped:
        raise ApiError(403, "forbidden", "a key limited to datasets cannot manage ontologies")


def _stored(spec: OntologySpec) -> dict[str, object]:
    return spec.model_dump(mode="json", exclude_none=True)


def _add_version(
    uow: UnitOfWork, ontology: Ontology, spec: OntologySpec, principal: Principal
) -> OntologyVersion:
    """Stage the ontology's next version and its event (the caller holds the ontology's lock)."""
    ontology.latest_version += 1
    row = OntologyVersion(
        ontology_id=ontology.id,
        version=ontology.latest_version,
        spec=_stored(spec),
        created_by=principal.name,
    )
    uow.emit(
        OntologyVersionCreatedV1(
            ontology_id=ontology.id,
            name=ontology.name,
            version=row.version,
            classes=[c.name for c in spec.classes],
            created_by=principal.name,
        ),
        subject=str(ontology.id),
        actor=principal.name,
    )
    return row


async def create_ontology(
    labeling: Labeling, principal: Principal, name: str, spec: OntologySpec
) -> VersionOf:
    """Create an ontology with ``spec`` as its version 1; 409 if the name is taken."""
    _require_unscoped(principal)
    try:
        async with labeling.units.begin() as uow:
            ontology = await repo.insert_ontology(
                uow.session,
                Ontology(id=uuid.uuid4(), name=name, latest_version=0, created_by=principal.name),
            )
            version = await repo.insert_version(
                uow.session, _add_version(uow, ontology, spec, principal)
            )
    except IntegrityError as exc:
        raise ApiError(
            409, "ontology_exists", f"an ontology named {name!r} already exists"
        ) from exc
    return VersionOf(ontology, version)


async def add_version(
    labeling: Labeling, principal: Principal, ref: str, spec: OntologySpec
) -> VersionOf:
    """Add the next version of an ontology; the earlier ones stay as they were."""
    _require_unscoped(principal)
    async with labeling.units.begin() as uow:
        ontology = await _find(uow.session, ref, for_update=True)
        row = _add_version(uow, ontology, spec, principal)
        return VersionOf(ontology, await repo.insert_version(uow.session, row))


async def list_ontologies(
    labeling: Labeling, limit: int, cursor: str | None
) -> tuple[list[Ontology], str | None]:
    """A page of ontologies and the cursor of the next one (None on the last page)."""
    after = Cursor.decode(cursor) if cursor else None
    async with labeling.units.read() as session:
        rows = list(await repo.list_ontologies(session, limit + 1, after))
    next_cursor = None
    if len(rows) > limit:
        next_cursor = Cursor(rows[limit - 1].created_at, rows[limit - 1].id).encode()
    return rows[:limit], next_cursor


async def get_ontology(labeling: Labeling, ref: str) -> OntologyDetail:
    """An ontology by id or name, with its latest version and the list of its versions."""
    async with labeling.units.read() as session:
        ontology = await _find(session, ref)
        versions = list(await repo.versions_of(session, ontology.id))
    return OntologyDetail(ontology, versions[-1], versions)


async def get_version(labeling: Labeling, ref: str, number: int) -> VersionOf:
    """One version of an ontology given by id or name."""
    async with labeling.units.read() as session:
        ontology = await _find(session, ref)
        row = await repo.version(session, ontology.id, number)
    if row is None:
        raise ApiError(
            404, "ontology_version_not_found", f"ontology {ref!r} has no version {number}"
        )
    return VersionOf(ontology, row)


async def pinned_spec(labeling: Labeling, ontology_id: uuid.UUID, version: int) -> OntologySpec:
    """The spec of one ontology version, from memory after the first read (versions never
    change, so the cache never goes stale). A version that does not exist is a 404."""
    key = (ontology_id, version)
    spec = _specs.get(key)
    if spec is not None:
        return spec
    async with labeling.units.read() as session:
        row = await repo.version(session, ontology_id, version)
    if row is None:
        raise ApiError(
            404,
            "ontology_version_not_found",
            f"ontology {ontology_id} has no version {version}",
        )
    spec = OntologySpec.model_validate(row.spec)
    _specs[key] = spec
    while len(_specs) > CACHED_SPECS:
        _specs.popitem(last=False)
    return spec


async def _find(session: AsyncSession, ref: str, *, for_update: bool = False) -> Ontology:
    """The ontology ``ref`` names: an id, or else a name (names never look like ids)."""
    key: uuid.UUID | str
    try:
        key = uuid.UUID(ref)
    except ValueError:
        key = ref
    ontology = await repo.ontology_by(session, key, for_update=for_update)
    if ontology is None:
        raise ApiError(404, "ontology_not_found", f"no ontology {ref!r}")
    return ontology
