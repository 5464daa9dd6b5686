"""Ontologies' routes: create, add a version, list, read (writes: admin, all datasets)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue

from services.labeling_dispatch.api.dependencies import (
    Admin,
    CursorParam,
    LabelingDep,
    Limit,
    Viewer,
)
from services.labeling_dispatch.domain.ontology import ClassSpec, OntologySpec
from services.labeling_dispatch.models import Ontology, OntologyVersion
from services.labeling_dispatch.use_cases import ontologies
from services.labeling_dispatch.use_cases.ontologies import VersionOf
from shared.errors import error_responses

router = APIRouter(prefix="/v1/ontologies", tags=["ontologies"])


def _not_an_id(value: str) -> str:
    """Paths take an ontology's id or its name, so a name must never read as an id."""
    try:
        uuid.UUID(value)
    except ValueError:
        return value
    raise ValueError("a name must not look like an id")


OntologyName = Annotated[
    str,
    Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"),
    AfterValidator(_not_an_id),
]
OntologyRef = Annotated[str, Path(description="the ontology's id or name", max_length=128)]
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]

EXAMPLE_CLASSES: list[JsonValue] = [
    {
        "name": "car",
        "shape": "bbox",
        "attributes": [
            {"name": "color", "type": "enum", "values": ["red", "blue"], "required": True}
        ],
    },
    {"name": "person", "shape": "keypoints", "keypoints": ["nose", "left_eye", "right_eye"]},
    {"name": "indoor", "shape": "classification"},
]


class OntologyCreate(OntologySpec):
    """A new ontology: its name (letters, digits, ``.``, ``_``, ``-``) and version 1's classes."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "vehicles", "classes": EXAMPLE_CLASSES}]}
    )

    name: OntologyName


class VersionCreate(OntologySpec):
    """The classes of an ontology's next version (the whole list, not a change to it)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"classes": EXAMPLE_CLASSES}]})


class OntologyVersionOut(BaseModel):
    """One immutable version of an ontology."""

    ontology_id: uuid.UUID
    name: str
    version: int
    classes: list[ClassSpec]
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, found: VersionOf) -> OntologyVersionOut:
        """The API form of a stored version."""
        return cls(
            ontology_id=found.ontology.id,
            name=found.ontology.name,
            version=found.version.version,
            classes=OntologySpec.model_validate(found.version.spec).classes,
            created_by=found.version.created_by,
            created_at=found.version.created_at,
        )


class OntologyOut(BaseModel):
    """An ontology: its name and how many versions it has."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    latest_version: int
    created_by: str
    created_at: datetime


class VersionSummary(BaseModel):
    """A version in an ontology's history."""

    version: int
    classes: list[str] = Field(description="the version's class names")
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, row: OntologyVersion) -> VersionSummary:
        """The summary of a stored version."""
        names = [str(c["name"]) for c in row.spec["classes"]]
        return cls(
            version=row.version, classes=names, created_by=row.created_by, created_at=row.created_at
        )


class OntologyDetailOut(OntologyOut):
    """An ontology with its latest version in full and its history."""

    latest: OntologyVersionOut
    versions: list[VersionSummary]


class OntologyPage(BaseModel):
    """One page of ontologies; pass ``next_cursor`` back as ``cursor`` for the next one."""

    items: list[OntologyOut]
    next_cursor: str | None


def _out(ontology: Ontology) -> OntologyOut:
    return OntologyOut.model_validate(ontology, from_attributes=True)


@router.post(
    "",
    status_code=201,
    summary="Create an ontology with its version 1 (admin, key for all datasets)",
    description="Class names are unique in a version, attribute names in a class; an enum "
    "attribute lists its values, a keypoints class its keypoint names. A spec that breaks a "
    "rule is answered 422 with every problem. 409 `ontology_exists` if the name is taken.",
    responses=error_responses(401, 403, 409, 422),
)
async def create_ontology(
    body: OntologyCreate, principal: Admin, labeling: LabelingDep
) -> OntologyVersionOut:
    spec = OntologySpec(classes=body.classes)
    return OntologyVersionOut.of(
        await ontologies.create_ontology(labeling, principal, body.name, spec)
    )


@router.post(
    "/{ontology}/versions",
    status_code=201,
    summary="Add an ontology's next version (admin); earlier versions never change",
    responses=error_responses(401, 403, 404, 422),
)
async def add_version(
    ontology: OntologyRef, body: VersionCreate, principal: Admin, labeling: LabelingDep
) -> OntologyVersionOut:
    spec = OntologySpec(classes=body.classes)
    return OntologyVersionOut.of(await ontologies.add_version(labeling, principal, ontology, spec))


@router.get("", summary="List ontologies", responses=error_responses(400, 401, 403, 422))
async def list_ontologies(
    principal: Viewer, labeling: LabelingDep, limit: Limit = 50, cursor: CursorParam = None
) -> OntologyPage:
    rows, next_cursor = await ontologies.list_ontologies(labeling, limit, cursor)
    return OntologyPage(items=[_out(o) for o in rows], next_cursor=next_cursor)


@router.get(
    "/{ontology}",
    summary="An ontology: its latest version and the list of its versions",
    responses=error_responses(401, 403, 404, 422),
)
async def get_ontology(
    ontology: OntologyRef, principal: Viewer, labeling: LabelingDep
) -> OntologyDetailOut:
    found = await ontologies.get_ontology(labeling, ontology)
    return OntologyDetailOut(
        **_out(found.ontology).model_dump(),
        latest=OntologyVersionOut.of(VersionOf(found.ontology, found.latest)),
        versions=[VersionSummary.of(v) for v in found.versions],
    )


@router.get(
    "/{ontology}/versions/{version}",
    summary="One version of an ontology",
    responses=error_responses(401, 403, 404, 422),
)
async def get_version(
    ontology: OntologyRef, version: VersionNumber, principal: Viewer, labeling: LabelingDep
) -> OntologyVersionOut:
    return OntologyVersionOut.of(await ontologies.get_version(labeling, ontology, version))
