"""Cleaned images stream into labeling jobs over the real stack; rejected ones never do."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY
from tests.media import image
from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("services")


@pytest.fixture
def labeling(labeling_url: str) -> Iterator[httpx.Client]:
    """An HTTP client of labeling-dispatch with the bootstrap admin key."""
    with httpx.Client(base_url=labeling_url, headers={"X-API-Key": ADMIN_KEY}, timeout=30) as c:
        yield c


def upload(uploader: httpx.Client, slug: str, name: str, content: bytes) -> str:
    response = uploader.post(f"/v1/datasets/{slug}/assets", files=[("files", (name, content))])
    assert response.status_code == 201, response.text
    return str(response.json()["items"][0]["id"])


def verdict(clean: httpx.Client, asset_id: str) -> str | None:
    response = clean.get(f"/v1/assets/{asset_id}/quality")
    return str(response.json()["status"]) if response.status_code == 200 else None


def judged(clean: httpx.Client, asset_id: str) -> str:
    """Clean's verdict on an asset, once there is one."""
    return eventually(lambda: verdict(clean, asset_id), timeout=60)


def job_tasks(labeling: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"job_id": job_id, "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = labeling.get("/v1/tasks", params=params)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def create_job(labeling: httpx.Client, body: dict[str, Any]) -> dict[str, Any] | None:
    """The job created, or None while labeling does not know the dataset yet."""
    response = labeling.post("/v1/jobs", json=body)
    if response.status_code == 404 and response.json()["error"]["code"] == "dataset_not_found":
        return None
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job


def broken(seed: int) -> bytes:
    """A JPEG cut in half: clean rejects it as truncated."""
    whole = image(320, 240, seed=seed)
    return whole[: len(whole) // 2]


def test_cleaned_images_before_and_after_a_job_become_tasks_rejected_ones_never(
    uploader: httpx.Client, labeling: httpx.Client, clean_url: str, dataset: str
) -> None:
    vendor = labeling.post(
        "/v1/vendors",
        json={"name": f"vendor-{dataset}", "url": "http://127.0.0.1:9/tasks", "capacity": 50},
    )
    assert vendor.status_code == 201, vendor.text
    assert vendor.json()["api_key"].startswith("cvv_")
    assert "secret" not in labeling.get(f"/v1/vendors/{vendor.json()['id']}").json()
    ontology = labeling.post(
        "/v1/ontologies",
        json={"name": f"onto-{dataset}", "classes": [{"name": "car", "shape": "bbox"}]},
    )
    assert ontology.status_code == 201, ontology.text

    before = [upload(uploader, dataset, f"before-{i}.jpg", image(320, 240)) for i in range(2)]
    rejected = [upload(uploader, dataset, "before-broken.jpg", broken(1))]
    body = {
        "name": "street scenes",
        "dataset": dataset,
        "ontology": f"onto-{dataset}",
        "vendor_ids": [vendor.json()["id"]],
        "overlap": 2,
    }
    # the dataset is known to labeling once its creation event is consumed
    job = eventually(lambda: create_job(labeling, body), timeout=30)
    assert job["state"] == "open" and job["overlap"] == 2 and job["ontology_version"] == 1

    after = [upload(uploader, dataset, f"after-{i}.png", image(320, 240, ".png")) for i in range(2)]
    rejected.append(upload(uploader, dataset, "after-broken.jpg", broken(2)))

    with httpx.Client(base_url=clean_url, headers={"X-API-Key": ADMIN_KEY}, timeout=30) as clean:
        verdicts = {a: judged(clean, a) for a in before + after + rejected}
    assert {verdicts[a] for a in before + after} == {"cleaned"}
    assert {verdicts[a] for a in rejected} == {"rejected"}

    cleaned = set(before + after)

    def every_cleaned_image_tasked() -> bool:
        return {t["asset_id"] for t in job_tasks(labeling, job["id"])} == cleaned

    eventually(every_cleaned_image_tasked)
    time.sleep(1.0)  # give a late rejection the chance to (wrongly) queue something
    tasks = job_tasks(labeling, job["id"])
    assert len(tasks) == 8
    replicas = Counter((t["asset_id"], t["replica"]) for t in tasks)
    assert set(replicas) == {(a, r) for a in cleaned for r in (0, 1)}
    assert set(replicas.values()) == {1}
    assert not {t["asset_id"] for t in tasks} & set(rejected)

    detail = labeling.get(f"/v1/jobs/{job['id']}").json()
    assert detail["regular_tasks"] == 8
    states = ("queued", "assigned", "dispatched", "submitted", "rework", "cancelled")
    assert sum(detail["total"][s] for s in states) == 8
    assert sum(p[s] for p in detail["progress"] for s in states) == 8
    one = labeling.get(f"/v1/tasks/{tasks[0]['id']}")
    assert one.status_code == 200 and one.json()["dataset_id"] == job["dataset_id"]
    assert isinstance(one.json()["assignments"], list)
    listed = labeling.get("/v1/jobs", params={"dataset": dataset}).json()["items"]
    assert [j["id"] for j in listed] == [job["id"]]
    assert labeling.get(f"/v1/jobs/{uuid.uuid4()}").status_code == 404

    box = {"class": "car", "type": "bbox", "bbox": {"x": 1, "y": 2, "width": 30, "height": 20}}
    scored = [{**box, "score": 0.8}, {**box, "score": 0.6}]
    attached = labeling.post(
        "/v1/predictions",
        json={"predictions": [{"asset_id": before[0], "model": "detector-1", "shapes": scored}]},
    )
    assert attached.status_code == 201, attached.text
    stored = labeling.get(f"/v1/assets/{before[0]}/predictions").json()["items"]
    assert [p["model"] for p in stored] == ["detector-1"]
    assert stored[0]["margin"] == pytest.approx(0.2)
    unknown = {"asset_id": str(uuid.uuid4()), "model": "m", "shapes": scored}
    assert labeling.post("/v1/predictions", json={"predictions": [unknown]}).status_code == 404

    cancelled = labeling.post(f"/v1/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert labeling.post(f"/v1/jobs/{job['id']}/resume").status_code == 409
    assert cancelled.json()["total"]["cancelled"] + cancelled.json()["total"]["submitted"] == 8
