"""Per-dataset keys across services, and key changes taking effect everywhere within a second."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.conftest import ADMIN_KEY
from tests.media import image
from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("services")


def client(url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30)


def new_dataset(admin: httpx.Client) -> str:
    slug = f"scope-{uuid.uuid4().hex[:8]}"
    assert admin.post("/v1/datasets", json={"slug": slug, "name": slug}).status_code == 201
    return slug


def test_a_key_limited_to_one_dataset_finds_nothing_of_another_in_any_service(
    admin: httpx.Client, ingest_url: str, clean_url: str, audit_url: str
) -> None:
    mine, theirs = new_dataset(admin), new_dataset(admin)
    upload = admin.post(f"/v1/datasets/{theirs}/assets", files=[("files", ("a.jpg", image()))])
    asset_id = upload.json()["items"][0]["id"]
    created = admin.post(
        "/v1/api-keys", json={"name": "limited", "role": "uploader", "datasets": [mine]}
    ).json()
    assert created["datasets"] == [mine]
    key = created["key"]
    ingest, clean = client(ingest_url, key), client(clean_url, key)
    cleaner = client(clean_url, ADMIN_KEY)
    eventually(lambda: cleaner.get(f"/v1/assets/{asset_id}/quality").status_code == 200)

    assert ingest.get(f"/v1/datasets/{mine}").status_code == 200
    assert [d["slug"] for d in ingest.get("/v1/datasets").json()["items"]] == [mine]
    for response in (
        ingest.get(f"/v1/datasets/{theirs}"),
        ingest.get(f"/v1/assets/{asset_id}"),
        ingest.get(f"/v1/datasets/{theirs}/assets"),
        ingest.post(f"/v1/datasets/{theirs}/assets", files=[("files", ("b.jpg", image()))]),
        clean.get(f"/v1/assets/{asset_id}/quality"),
        clean.get(f"/v1/datasets/{theirs}/quality"),
        clean.get(f"/v1/datasets/{theirs}/duplicates"),
    ):
        assert response.status_code == 404, response.text
    assert ingest.post("/v1/datasets", json={"slug": "scope-x", "name": "x"}).status_code == 403
    # the scope change is audited with who made it
    admin.put(f"/v1/api-keys/{created['id']}/datasets", json={"datasets": [mine, theirs]})
    audit = client(audit_url, ADMIN_KEY)
    records = eventually(
        lambda: (
            audit.get("/v1/audit/records", params={"subject": created["id"]}).json()["items"]
            if len(
                audit.get("/v1/audit/records", params={"subject": created["id"]}).json()["items"]
            )
            == 2
            else None
        )
    )
    assert [r["type"] for r in records] == [
        "conveyor.api_key.created.v1",
        "conveyor.api_key.scope_changed.v1",
    ]


def test_a_revoked_or_rescoped_key_stops_working_in_clean_within_a_second(
    admin: httpx.Client, clean_url: str
) -> None:
    mine = new_dataset(admin)
    created = admin.post("/v1/api-keys", json={"name": "soon-gone", "role": "viewer"}).json()
    clean = client(clean_url, created["key"])
    # once clean knows the dataset, the key's answer is cached there
    eventually(lambda: clean.get(f"/v1/datasets/{mine}/policy").status_code == 200)
    admin.put(f"/v1/api-keys/{created['id']}/datasets", json={"datasets": []})
    changed = time.monotonic()
    while clean.get(f"/v1/datasets/{mine}/policy").status_code != 404:
        assert time.monotonic() - changed < 1.5, "clean still uses the old scope"
        time.sleep(0.05)
    assert admin.delete(f"/v1/api-keys/{created['id']}").status_code == 204
    revoked = time.monotonic()
    while clean.get(f"/v1/datasets/{mine}/policy").status_code != 401:
        assert time.monotonic() - revoked < 1.5, "clean still accepts the revoked key"
        time.sleep(0.05)
