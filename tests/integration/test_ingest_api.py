"""Ingest's HTTP API against the real stack: datasets, uploads, bad input, auth."""

from __future__ import annotations

import hashlib
import uuid

import httpx
import pytest

from tests.conftest import minio_client
from tests.media import image, video
from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("services")


def upload(client: httpx.Client, slug: str, *files: tuple[str, bytes], **data: object):
    return client.post(
        f"/v1/datasets/{slug}/assets",
        files=[("files", (name, content)) for name, content in files],
        data=data,
    )


def raw_object_exists(sha256: str) -> bool:
    key = f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"
    try:
        minio_client().stat_object("conveyor-raw", key)
    except Exception:
        return False
    return True


def test_dataset_is_created_fetched_and_listed_with_cursor_pagination(uploader: httpx.Client):
    slugs = [f"page-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    for slug in slugs:
        response = uploader.post("/v1/datasets", json={"slug": slug, "name": slug.upper()})
        assert response.status_code == 201
        assert response.json()["created_by"] == "test-uploader"
    got = uploader.get(f"/v1/datasets/{slugs[0]}").json()
    assert got["name"] == slugs[0].upper()
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = uploader.get("/v1/datasets", params=params).json()
        assert len(page["items"]) <= 2
        seen += [d["slug"] for d in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert set(slugs) <= set(seen)
    assert len(seen) == len(set(seen))


def test_duplicate_or_invalid_slug_is_refused_with_error_body(uploader: httpx.Client, dataset: str):
    again = uploader.post("/v1/datasets", json={"slug": dataset, "name": "again"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "dataset_exists"
    bad = uploader.post("/v1/datasets", json={"slug": "Bad Slug!", "name": "x"})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "validation_error"


def test_upload_stores_bytes_content_addressed_and_registers_the_asset(
    uploader: httpx.Client, dataset: str
):
    content = image(ext=".png")
    response = upload(uploader, dataset, ("../../etc/shot.png", content), tags=["day", "cam1"])
    assert response.status_code == 201, response.text
    (asset,) = response.json()["items"]
    sha = hashlib.sha256(content).hexdigest()
    assert asset["sha256"] == sha
    assert asset["media_type"] == "image/png"
    assert asset["size_bytes"] == len(content)
    assert asset["filename"] == "shot.png"
    assert asset["tags"] == ["cam1", "day"]
    assert asset["source"] == "upload" and asset["duplicate"] is False
    assert raw_object_exists(sha)
    detail = uploader.get(f"/v1/assets/{asset['id']}").json()
    assert httpx.get(detail["download_url"]).content == content


def test_same_bytes_uploaded_again_return_the_existing_asset_marked_duplicate(
    uploader: httpx.Client, dataset: str
):
    content = image()
    first = upload(uploader, dataset, ("a.jpg", content)).json()["items"][0]
    second = upload(uploader, dataset, ("renamed.jpg", content)).json()["items"][0]
    assert second["id"] == first["id"]
    assert second["duplicate"] is True
    listed = uploader.get(f"/v1/datasets/{dataset}/assets").json()["items"]
    assert [a["id"] for a in listed] == [first["id"]]


def test_a_request_mixing_new_known_and_repeated_files_stores_each_once(
    uploader: httpx.Client, dataset: str
):
    known, new = image(), image()
    first = upload(uploader, dataset, ("known.jpg", known)).json()["items"][0]
    response = upload(
        uploader, dataset, ("new.jpg", new), ("known-again.jpg", known), ("new-again.jpg", new)
    )
    assert response.status_code == 201, response.text
    fresh, known_again, repeated = response.json()["items"]
    assert (fresh["duplicate"], known_again["duplicate"], repeated["duplicate"]) == (
        False,
        True,
        True,
    )
    assert known_again["id"] == first["id"] and repeated["id"] == fresh["id"]
    listed = uploader.get(f"/v1/datasets/{dataset}/assets").json()["items"]
    assert sorted(a["id"] for a in listed) == sorted([first["id"], fresh["id"]])


def test_many_files_in_one_request_come_back_in_order_with_detected_types(
    uploader: httpx.Client, dataset: str
):
    files = [
        ("a.jpg", image(ext=".jpg")),
        ("b.webp", image(ext=".webp")),
        ("c.bmp", image(ext=".bmp")),
        ("d.tif", image(ext=".tiff")),
        ("e.avi", video("MJPG", ".avi")),
        ("named-wrong.png", image(ext=".jpg")),
    ]
    response = upload(uploader, dataset, *files)
    assert response.status_code == 201, response.text
    types = [a["media_type"] for a in response.json()["items"]]
    assert types == [
        "image/jpeg",
        "image/webp",
        "image/bmp",
        "image/tiff",
        "video/x-msvideo",
        "image/jpeg",
    ]


def test_unknown_type_is_415_and_nothing_from_the_request_is_stored(
    uploader: httpx.Client, dataset: str
):
    good = image()
    response = upload(uploader, dataset, ("ok.jpg", good), ("notes.jpg", b"just some text\n"))
    assert response.status_code == 415
    body = response.json()["error"]
    assert body["code"] == "unsupported_media_type"
    assert body["details"]["filename"] == "notes.jpg"
    assert uploader.get(f"/v1/datasets/{dataset}/assets").json()["items"] == []
    assert not raw_object_exists(hashlib.sha256(good).hexdigest())


@pytest.mark.parametrize(
    ("tags", "code"),
    [(["day", "bad\x00tag"], "validation_error"), ([f"t{i}" for i in range(51)], "too_many_tags")],
    ids=["nul", "too-many"],
)
def test_unfit_tags_are_422_before_any_byte_is_stored(
    uploader: httpx.Client, dataset: str, tags: list[str], code: str
):
    content = image()
    response = upload(uploader, dataset, ("a.jpg", content), tags=tags)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == code
    assert not raw_object_exists(hashlib.sha256(content).hexdigest())


def test_a_5000_character_file_name_is_kept_shortened(uploader: httpx.Client, dataset: str):
    response = upload(uploader, dataset, ("n" * 5000 + ".jpg", image()))
    assert response.status_code == 201, response.text
    assert response.json()["items"][0]["filename"] == "n" * 255


def test_a_wrong_type_is_refused_from_its_first_bytes_without_reading_the_rest(
    uploader: httpx.Client, dataset: str
):
    sent = 0
    boundary = "conveyor-test-boundary"

    def body():  # 200 MiB of text, sent in 1 MiB pieces, announced as one file
        nonlocal sent
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="notes.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
        ).encode()
        for _ in range(200):
            sent += 1
            yield b"not an image at all\n" * 52_429
        yield f"\r\n--{boundary}--\r\n".encode()

    try:
        response = uploader.post(
            f"/v1/datasets/{dataset}/assets",
            content=body(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
    except httpx.TransportError:
        # The server answered and closed while the client was still sending: also a refusal
        # before the body was read, which is what this test is about.
        response = None
    if response is not None:
        assert response.status_code == 415, response.text
        assert response.json()["error"]["code"] == "unsupported_media_type"
    # refused long before the end (the server stops reading; the client notices soon after)
    assert sent < 200


def test_an_empty_file_is_422_empty(uploader: httpx.Client, dataset: str):
    response = upload(uploader, dataset, ("a.jpg", b""))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "empty"


def test_file_over_the_size_limit_is_413(uploader: httpx.Client, dataset: str):
    too_big = b"\xff\xd8\xff\xe0" + b"\0" * (8 * 1024 * 1024 + 10)  # limit is 8 MiB in tests
    response = upload(uploader, dataset, ("big.jpg", too_big))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"
    assert uploader.get(f"/v1/datasets/{dataset}/assets").json()["items"] == []


def test_request_body_over_the_limit_is_cut_off_with_413_declared_or_chunked(
    uploader: httpx.Client, dataset: str
):
    chunk = b"\xff\xd8\xff\xe0" + b"\0" * (7 * 1024 * 1024)  # each file under the 8 MiB limit
    declared = upload(uploader, dataset, *[(f"{i}.jpg", chunk) for i in range(4)])  # 28 MiB
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "payload_too_large"

    def endless():  # no Content-Length: the server must stop reading on its own
        yield b"--b\r\nContent-Disposition: form-data; name=files; filename=a.jpg\r\n\r\n"
        yield b"\xff\xd8\xff\xe0"  # a JPEG's first bytes: only its size can refuse it
        for _ in range(64):
            yield b"\0" * (1024 * 1024)

    chunked = uploader.post(
        f"/v1/datasets/{dataset}/assets",
        content=endless(),
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert chunked.status_code == 413
    assert uploader.get(f"/v1/datasets/{dataset}/assets").json()["items"] == []


def test_corrupt_file_of_a_known_type_is_accepted_for_the_clean_service(
    uploader: httpx.Client, dataset: str
):
    truncated = image(width=200, height=200)[:500]
    response = upload(uploader, dataset, ("broken.jpg", truncated))
    assert response.status_code == 201
    assert response.json()["items"][0]["media_type"] == "image/jpeg"


def test_malformed_json_and_wrong_types_get_422_error_bodies(uploader: httpx.Client):
    response = uploader.post(
        "/v1/datasets", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    response = uploader.post("/v1/datasets", json={"slug": 12, "name": ["x"]})
    assert response.status_code == 422


def test_unknown_ids_and_bad_cursors_get_clear_4xx(uploader: httpx.Client, dataset: str):
    assert uploader.get("/v1/datasets/no-such-dataset").json()["error"]["code"] == (
        "dataset_not_found"
    )
    missing = uploader.get(f"/v1/assets/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "asset_not_found"
    assert uploader.get("/v1/assets/not-a-uuid").status_code == 422
    bad = uploader.get(f"/v1/datasets/{dataset}/assets", params={"cursor": "garbage"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cursor"
    no_dataset = upload(uploader, "no-such-dataset", ("a.jpg", image()))
    assert no_dataset.status_code == 404


def test_forged_key_is_401_and_viewer_key_is_403_on_upload(
    ingest_url: str, viewer_key: str, dataset: str
):
    forged = httpx.Client(base_url=ingest_url, headers={"X-API-Key": "cvk_forged"})
    response = upload(forged, dataset, ("a.jpg", image()))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    anonymous = httpx.Client(base_url=ingest_url)
    assert upload(anonymous, dataset, ("a.jpg", image())).status_code == 401
    viewer = httpx.Client(base_url=ingest_url, headers={"X-API-Key": viewer_key})
    response = upload(viewer, dataset, ("a.jpg", image()))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert viewer.get(f"/v1/datasets/{dataset}").status_code == 200


def test_revoked_key_stops_working_and_only_admins_manage_keys(
    admin: httpx.Client, uploader: httpx.Client, ingest_url: str, audit_url: str
):
    created = admin.post("/v1/api-keys", json={"name": "temp", "role": "viewer"}).json()
    temp = httpx.Client(base_url=ingest_url, headers={"X-API-Key": created["key"]})
    assert temp.get("/v1/auth/me").json()["role"] == "viewer"
    assert admin.delete(f"/v1/api-keys/{created['id']}").status_code == 204
    assert temp.get("/v1/auth/me").status_code == 401
    assert admin.delete(f"/v1/api-keys/{created['id']}").status_code == 404
    assert uploader.post("/v1/api-keys", json={"name": "x", "role": "admin"}).status_code == 403
    listed = admin.get("/v1/api-keys").json()["items"]
    assert all("key" not in k and "key_hash" not in k for k in listed)
    # Issuing and revoking keys are audited events (without the key).
    audit = httpx.Client(base_url=audit_url, headers=admin.headers, timeout=30)

    def key_events() -> list[str] | None:
        items = audit.get("/v1/audit/records", params={"subject": created["id"]}).json()["items"]
        return [r["type"] for r in items] if len(items) == 2 else None

    types = eventually(key_events)
    assert types == ["conveyor.api_key.created.v1", "conveyor.api_key.revoked.v1"]


def test_asset_listing_filters_and_hash_lookup(uploader: httpx.Client, dataset: str):
    jpg, png = image(), image(ext=".png")
    upload(uploader, dataset, ("a.jpg", jpg), tags=["red"])
    upload(uploader, dataset, ("b.png", png), tags=["blue"])
    by_type = uploader.get(f"/v1/datasets/{dataset}/assets", params={"media_type": "image/png"})
    assert [a["filename"] for a in by_type.json()["items"]] == ["b.png"]
    by_tag = uploader.get(f"/v1/datasets/{dataset}/assets", params={"tag": "red"})
    assert [a["filename"] for a in by_tag.json()["items"]] == ["a.jpg"]
    unknown = hashlib.sha256(b"never uploaded").hexdigest()
    known = hashlib.sha256(jpg).hexdigest()
    result = uploader.post(
        f"/v1/datasets/{dataset}/assets/lookup", json={"sha256": [known, unknown]}
    ).json()
    assert list(result["known"]) == [known]


def test_objectstore_webhook_refuses_wrong_token_and_malformed_json(ingest_url: str):
    url = f"{ingest_url}/internal/objectstore/events"
    wrong = httpx.post(url, json={}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    good = {"Authorization": "Bearer dev-objectstore-token", "content-type": "application/json"}
    malformed = httpx.post(url, content=b"{oops", headers=good)
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "malformed_json"
    ignored = httpx.post(url, json={"event_type": "delete", "key": "/buckets/x/y"}, headers=good)
    assert ignored.status_code == 204


def test_health_readiness_metrics_and_openapi(ingest_url: str):
    health = httpx.get(f"{ingest_url}/healthz").json()
    assert health == {"status": "ok", "service": "ingest", "version": health["version"]}
    ready = httpx.get(f"{ingest_url}/readyz").json()
    assert ready["checks"] == {"postgres": "ok", "kafka": "ok", "objectstore": "ok"}
    assert "conveyor_http_requests_total" in httpx.get(f"{ingest_url}/metrics").text
    spec = httpx.get(f"{ingest_url}/openapi.json").json()
    upload_op = spec["paths"]["/v1/datasets/{slug}/assets"]["post"]
    assert {"413", "415", "401", "403"} <= set(upload_op["responses"])
