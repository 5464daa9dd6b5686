"""Ontologies on the real Postgres: in process (use cases) and over HTTP (the running service)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any, NoReturn, cast

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from services.labeling_dispatch.context import Labeling
from services.labeling_dispatch.domain.ontology import OntologySpec
from services.labeling_dispatch.models import outbox
from services.labeling_dispatch.use_cases import ontologies
from shared.auth import Principal, Role
from shared.errors import ApiError
from shared.events import ONTOLOGY_VERSION_CREATED
from tests.conftest import ADMIN_KEY

ADMIN = Principal("admin-key", "tester", Role.admin)
SCOPED_ADMIN = Principal("scoped-key", "scoped", Role.admin, frozenset({str(uuid.uuid4())}))

V1 = OntologySpec.model_validate({"classes": [{"name": "car", "shape": "bbox"}]})
V2 = OntologySpec.model_validate(
    {
        "classes": [
            {"name": "car", "shape": "bbox"},
            {"name": "road", "shape": "polygon"},
        ]
    }
)


# --- in process ---------------------------------------------------------------------------


async def test_a_new_version_leaves_the_old_one_as_it_was(labeling: Labeling) -> None:
    created = await ontologies.create_ontology(labeling, ADMIN, "vehicles", V1)
    assert created.version.version == 1
    second = await ontologies.add_version(labeling, ADMIN, "vehicles", V2)
    assert second.version.version == 2

    first = await ontologies.get_version(labeling, str(created.ontology.id), 1)
    assert OntologySpec.model_validate(first.version.spec) == V1
    detail = await ontologies.get_ontology(labeling, str(created.ontology.id))
    assert detail.ontology.latest_version == 2
    assert [v.version for v in detail.versions] == [1, 2]
    assert OntologySpec.model_validate(detail.latest.spec) == V2


async def test_every_version_is_an_event(labeling: Labeling) -> None:
    created = await ontologies.create_ontology(labeling, ADMIN, "vehicles", V1)
    await ontologies.add_version(labeling, ADMIN, created.ontology.name, V2)
    async with labeling.units.read() as session:
        envelopes = (await session.execute(select(outbox.c.envelope))).scalars().all()
    versions = [e["data"] for e in envelopes if e["type"] == ONTOLOGY_VERSION_CREATED.name]
    assert [(v["version"], v["classes"]) for v in versions] == [
        (1, ["car"]),
        (2, ["car", "road"]),
    ]
    assert {e["subject"] for e in envelopes} == {str(created.ontology.id)}


async def test_a_taken_name_is_a_409(labeling: Labeling) -> None:
    await ontologies.create_ontology(labeling, ADMIN, "vehicles", V1)
    with pytest.raises(ApiError) as caught:
        await ontologies.create_ontology(labeling, ADMIN, "vehicles", V2)
    assert (caught.value.status, caught.value.code) == (409, "ontology_exists")


async def test_a_key_limited_to_datasets_cannot_write_ontologies(labeling: Labeling) -> None:
    with pytest.raises(ApiError) as caught:
        await ontologies.create_ontology(labeling, SCOPED_ADMIN, "vehicles", V1)
    assert caught.value.status == 403
    await ontologies.create_ontology(labeling, ADMIN, "vehicles", V1)
    with pytest.raises(ApiError) as caught:
        await ontologies.add_version(labeling, SCOPED_ADMIN, "vehicles", V2)
    assert caught.value.status == 403


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE labeling.ontology_versions SET created_by = 'someone else'",
        "DELETE FROM labeling.ontology_versions",
    ],
)
async def test_the_database_refuses_to_change_a_version(labeling: Labeling, statement: str) -> None:
    await ontologies.create_ontology(labeling, ADMIN, "vehicles", V1)
    with pytest.raises(DBAPIError):
        async with labeling.units.begin() as uow:
            await uow.session.execute(text(statement))


async def test_unknown_ontologies_and_versions_are_404(labeling: Labeling) -> None:
    await ontologies.create_ontology(labeling, ADMIN, "vehicles", V1)
    for call in (
        ontologies.get_ontology(labeling, "nothing"),
        ontologies.get_ontology(labeling, str(uuid.uuid4())),
        ontologies.get_version(labeling, "vehicles", 2),
        ontologies.add_version(labeling, ADMIN, "nothing", V2),
    ):
        with pytest.raises(ApiError) as caught:
            await call
        assert caught.value.status == 404


class NoDatabase:
    """Units of work that fail if used: proves an answer came from memory."""

    @asynccontextmanager
    async def read(self) -> AsyncIterator[NoReturn]:
        raise AssertionError("the database was read")
        yield  # pragma: no cover


async def test_pinned_spec_is_read_once_then_served_from_memory(labeling: Labeling) -> None:
    created = await ontologies.create_ontology(labeling, ADMIN, "vehicles", V2)
    spec = await ontologies.pinned_spec(labeling, created.ontology.id, 1)
    assert spec == V2 and spec.class_named("road") is not None
    offline = dataclasses.replace(labeling, units=cast(Any, NoDatabase()))
    assert await ontologies.pinned_spec(offline, created.ontology.id, 1) is spec
    with pytest.raises(ApiError) as caught:
        await ontologies.pinned_spec(labeling, created.ontology.id, 2)
    assert caught.value.code == "ontology_version_not_found"


async def test_list_pages_through_every_ontology(labeling: Labeling) -> None:
    for name in ("a", "b", "c"):
        await ontologies.create_ontology(labeling, ADMIN, name, V1)
    first, cursor = await ontologies.list_ontologies(labeling, 2, None)
    assert cursor is not None
    rest, end = await ontologies.list_ontologies(labeling, 2, cursor)
    # one transaction: the same created_at for all three, so the order is the ids'
    assert sorted(o.name for o in first + rest) == ["a", "b", "c"] and end is None


# --- over HTTP -------------------------------------------------------------------------------


@pytest.fixture
def labeling_admin(labeling_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=labeling_url, headers={"X-API-Key": ADMIN_KEY}, timeout=30) as c:
        yield c


@pytest.fixture
def labeling_viewer(labeling_url: str, viewer_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=labeling_url, headers={"X-API-Key": viewer_key}, timeout=30) as c:
        yield c


def unique_name() -> str:
    return f"onto-{uuid.uuid4().hex[:8]}"


CLASSES: list[dict[str, Any]] = [
    {
        "name": "car",
        "shape": "bbox",
        "attributes": [{"name": "color", "type": "enum", "values": ["red"], "required": True}],
    },
    {"name": "person", "shape": "keypoints", "keypoints": ["nose"]},
]


def test_http_create_version_and_read(
    labeling_admin: httpx.Client, labeling_viewer: httpx.Client
) -> None:
    name = unique_name()
    created = labeling_admin.post("/v1/ontologies", json={"name": name, "classes": CLASSES})
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["name"], body["version"]) == (name, 1)
    assert body["classes"][0]["attributes"][0]["values"] == ["red"]

    more = [*CLASSES, {"name": "indoor", "shape": "classification"}]
    second = labeling_admin.post(
        f"/v1/ontologies/{body['ontology_id']}/versions", json={"classes": more}
    )
    assert second.status_code == 201, second.text
    assert second.json()["version"] == 2

    shown = labeling_viewer.get(f"/v1/ontologies/{name}")
    assert shown.status_code == 200
    detail = shown.json()
    assert detail["latest_version"] == 2 and detail["latest"]["version"] == 2
    assert [v["classes"] for v in detail["versions"]] == [
        ["car", "person"],
        ["car", "person", "indoor"],
    ]
    first = labeling_viewer.get(f"/v1/ontologies/{name}/versions/1")
    assert [c["name"] for c in first.json()["classes"]] == ["car", "person"]
    listed = labeling_viewer.get("/v1/ontologies", params={"limit": 500}).json()
    assert name in [o["name"] for o in listed["items"]]


@pytest.mark.parametrize(
    "classes",
    [
        [{"name": "car", "shape": "bbox"}, {"name": "car", "shape": "bbox"}],
        [{"name": "p", "shape": "keypoints"}],
        [{"name": "car", "shape": "bbox", "attributes": [{"name": "c", "type": "enum"}]}],
        [{"name": "car", "shape": "bbox", "size": 3}],
        [],
    ],
)
def test_http_a_spec_that_breaks_a_rule_is_a_422(
    labeling_admin: httpx.Client, classes: list[dict[str, Any]]
) -> None:
    answer = labeling_admin.post("/v1/ontologies", json={"name": unique_name(), "classes": classes})
    assert answer.status_code == 422
    assert answer.json()["error"]["details"]["errors"]


def test_http_names_that_look_like_ids_are_refused(labeling_admin: httpx.Client) -> None:
    answer = labeling_admin.post(
        "/v1/ontologies", json={"name": str(uuid.uuid4()), "classes": CLASSES}
    )
    assert answer.status_code == 422


def test_http_viewers_read_but_do_not_write(
    labeling_admin: httpx.Client, labeling_viewer: httpx.Client
) -> None:
    name = unique_name()
    refused = labeling_viewer.post("/v1/ontologies", json={"name": name, "classes": CLASSES})
    assert refused.status_code == 403
    assert (
        labeling_admin.post("/v1/ontologies", json={"name": name, "classes": CLASSES}).status_code
        == 201
    )
    taken = labeling_admin.post("/v1/ontologies", json={"name": name, "classes": CLASSES})
    assert (taken.status_code, taken.json()["error"]["code"]) == (409, "ontology_exists")
    missing = labeling_viewer.get(f"/v1/ontologies/{name}/versions/9")
    assert (missing.status_code, missing.json()["error"]["code"]) == (
        404,
        "ontology_version_not_found",
    )
