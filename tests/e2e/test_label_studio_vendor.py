"""Label Studio as a vendor, through the running services and the stack's real Label Studio.

Upload -> clean -> a job for a ``label_studio`` vendor -> a project in Label Studio with the
ontology's labeling config and the tasks (working image links) -> annotations made through
Label Studio's own API, as a labeler's browser makes them -> Conveyor stores them in pixels,
validated, audited; bad ones refused and recorded; changes and deletions kept as versions;
nothing lost while labeling-dispatch is down or too slow for Label Studio's webhook.

The session's labeling-dispatch reconciles Label Studio projects every second
(tests/conftest.py).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from deploy.services import ServiceProcess
from deploy.stack.config import load_settings
from deploy.stack.labelstudio import LabelStudio
from deploy.stack.stack import servers
from shared import endpoints
from tests.e2e.test_cli_labeling import as_json, conveyor
from tests.e2e.test_labeling_dispatch import labeling, upload_photos  # noqa: F401 (fixture)
from tests.waiting import eventually

if not any(isinstance(server, LabelStudio) for server in servers(load_settings({}))):
    pytest.skip("Label Studio is not part of the local stack", allow_module_level=True)

pytestmark = pytest.mark.usefixtures("services")

CLASSES = [
    {"name": "car", "shape": "bbox"},
    {"name": "person", "shape": "bbox"},
]
WIDTH, HEIGHT = 640, 480  # the test photos' size


class LabelStudioClient:
    """Label Studio's REST API, as its labeling screen and its admins use it."""

    def __init__(self) -> None:
        token = load_settings().label_studio_token
        self.http = httpx.Client(
            base_url=endpoints.LABEL_STUDIO_URL,
            headers={"Authorization": f"Token {token}"},
            timeout=30,
        )

    def tasks(self, project: int) -> list[dict[str, Any]]:
        response = self.http.get(
            "/api/tasks", params={"project": project, "page_size": 1000, "fields": "all"}
        )
        assert response.status_code == 200, response.text
        tasks: list[dict[str, Any]] = response.json()["tasks"]
        return tasks

    def annotate(
        self, task: int, box: tuple[float, float, float, float], label: str = "car", **extra: Any
    ) -> dict[str, Any]:
        """What the labeling screen posts when a labeler draws one box (percent) and submits."""
        response = self.http.post(
            f"/api/tasks/{task}/annotations/",
            json={"result": [box_result(box, label)], "lead_time": 3.5, **extra},
        )
        assert response.status_code == 201, response.text
        made: dict[str, Any] = response.json()
        return made

    def user(self) -> int:
        email = f"labeler-{uuid.uuid4().hex[:8]}@conveyor.local"
        response = self.http.post("/api/users/", json={"email": email, "username": email})
        assert response.status_code == 201, response.text
        return int(response.json()["id"])


def box_result(box: tuple[float, float, float, float], label: str) -> dict[str, Any]:
    x, y, w, h = box
    return {
        "id": uuid.uuid4().hex[:10],
        "from_name": "bbox",
        "to_name": "image",
        "type": "rectanglelabels",
        "original_width": WIDTH,
        "original_height": HEIGHT,
        "image_rotation": 0,
        "value": {
            "x": x,
            "y": y,
            "width": w,
            "height": h,
            "rotation": 0,
            "rectanglelabels": [label],
        },
    }


@dataclass
class LabelStudioJob:
    """A job for a Label Studio vendor, with the photos it covers."""

    labeling: httpx.Client
    studio: LabelStudioClient
    vendor_id: str
    vendor_name: str
    job_id: str
    photos: dict[str, bytes]

    def projects(self, count: int = 1) -> list[dict[str, Any]]:
        def made() -> list[dict[str, Any]] | None:
            response = self.labeling.get(f"/v1/jobs/{self.job_id}/label-studio")
            assert response.status_code == 200, response.text
            found: list[dict[str, Any]] = response.json()
            return found if len(found) == count else None

        return eventually(made, timeout=60)

    def ls_tasks(self, project: int, count: int) -> list[dict[str, Any]]:
        return eventually(
            lambda: (tasks := self.studio.tasks(project)) and len(tasks) == count and tasks,
            timeout=60,
        )

    def annotations(self, task_id: str) -> list[dict[str, Any]]:
        response = self.labeling.get(f"/v1/tasks/{task_id}/annotations")
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def refusals(self, task_id: str) -> list[dict[str, Any]]:
        response = self.labeling.get(f"/v1/tasks/{task_id}/refusals")
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items


@pytest.fixture
def studio() -> Iterator[LabelStudioClient]:
    client = LabelStudioClient()
    yield client
    client.http.close()


def start(
    labeling: httpx.Client,  # noqa: F811
    uploader: httpx.Client,
    studio: LabelStudioClient,
    photos: int,
    overlap: int = 1,
) -> LabelStudioJob:
    slug = f"ls-{uuid.uuid4().hex[:8]}"
    assert uploader.post("/v1/datasets", json={"slug": slug, "name": slug}).status_code == 201
    uploaded = upload_photos(uploader, slug, photos)
    ontology = f"ls-{uuid.uuid4().hex[:8]}"
    created = labeling.post("/v1/ontologies", json={"name": ontology, "classes": CLASSES})
    assert created.status_code == 201, created.text
    name = f"label-studio-{uuid.uuid4().hex[:6]}"
    vendor = labeling.post("/v1/vendors", json={"name": name, "kind": "label_studio"})
    assert vendor.status_code == 201, vendor.text
    assert vendor.json()["url"] == endpoints.LABEL_STUDIO_URL
    job = labeling.post(
        "/v1/jobs",
        json={
            "name": f"street scenes {uuid.uuid4().hex[:4]}",
            "dataset": slug,
            "ontology": ontology,
            "vendor_ids": [vendor.json()["id"]],
            "overlap": overlap,
            "lease_seconds": 3600,
        },
    )
    assert job.status_code == 201, job.text
    return LabelStudioJob(labeling, studio, vendor.json()["id"], name, job.json()["id"], uploaded)


def test_a_job_is_labeled_in_label_studio_and_comes_back_validated_versioned_and_audited(
    labeling: httpx.Client,  # noqa: F811
    uploader: httpx.Client,
    auditor: httpx.Client,
    studio: LabelStudioClient,
) -> None:
    scene = start(labeling, uploader, studio, photos=3)
    (project,) = scene.projects()
    config = studio.http.get(f"/api/projects/{project['project_id']}").json()["label_config"]
    assert '<Label value="car"' in config and '<Label value="person"' in config
    tasks = scene.ls_tasks(project["project_id"], 3)

    # every task's image link works for a labeler's browser and is one of the photos
    for task in tasks:
        image = httpx.get(task["data"]["image"], timeout=30)
        assert image.status_code == 200
        assert image.content in scene.photos.values()
    first, second, third = tasks
    task_id = first["data"]["conveyor_task_id"]

    # an annotation made in Label Studio comes back in pixels, validated, once
    made = studio.annotate(first["id"], (10.0, 25.0, 50.0, 12.5))
    stored = eventually(lambda: scene.annotations(task_id), timeout=30)
    assert len(stored) == 1
    assert stored[0]["shapes"] == [
        {
            "class": "car",
            "type": "bbox",
            "bbox": {"x": 64.0, "y": 120.0, "width": 320.0, "height": 60.0},
            "attributes": {},
        }
    ]
    assert stored[0]["annotator_id"] == f"label-studio:{load_settings().label_studio_admin_email}"
    assert stored[0]["vendor_ref"] == str(made["id"]) and stored[0]["version"] == 1
    time.sleep(2.5)  # reconcile ran since: the same annotation seen again is not stored again
    assert len(scene.annotations(task_id)) == 1

    # a bad annotation is refused with its problems, visible on its task
    bad_task = second["data"]["conveyor_task_id"]
    studio.annotate(second["id"], (90.0, 10.0, 30.0, 10.0), label="truck")
    refusals = eventually(lambda: scene.refusals(bad_task), timeout=30)
    assert refusals[0]["reason"] == "invalid_annotation"
    codes = {p["code"] for p in refusals[0]["problems"]}
    assert {"unknown_class", "out_of_bounds"} <= codes, refusals[0]["problems"]
    assert scene.annotations(bad_task) == []
    time.sleep(2.5)
    assert len(scene.refusals(bad_task)) == 1  # refused once, not at every reconcile

    # a change in Label Studio is a new version; a deletion withdraws it; nothing overwritten
    changed = studio.http.patch(
        f"/api/annotations/{made['id']}/", json={"result": [box_result((0, 0, 10, 10), "person")]}
    )
    assert changed.status_code == 200, changed.text
    versions = eventually(
        lambda: (found := scene.annotations(task_id)) and len(found) == 2 and found
    )
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[1]["supersedes"] == versions[0]["id"]
    assert versions[1]["shapes"][0]["class"] == "person"
    assert versions[0]["shapes"][0]["class"] == "car"
    assert studio.http.delete(f"/api/annotations/{made['id']}/").status_code == 204
    withdrawn = eventually(
        lambda: (found := scene.annotations(task_id)) and found[1]["withdrawn_at"] and found
    )
    assert withdrawn[0]["withdrawn_at"] is None and len(withdrawn) == 2

    # the asset's audit timeline names the Label Studio user, then the withdrawal
    asset_id = next(
        a
        for a, content in scene.photos.items()
        if content == httpx.get(first["data"]["image"]).content
    )

    def timeline() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = auditor.get(f"/v1/audit/assets/{asset_id}/timeline").json()[
            "items"
        ]
        types = [r["type"] for r in items]
        return items if "conveyor.annotation.withdrawn.v1" in types else None

    records = eventually(timeline, timeout=30)
    submitted = [r for r in records if r["type"] == "conveyor.annotation.submitted.v1"]
    assert len(submitted) == 2
    assert {r["payload"]["annotator_id"] for r in submitted} == {stored[0]["annotator_id"]}
    assert {r["actor"] for r in submitted} == {f"vendor:{scene.vendor_name}"}
    assert scene.annotations(third["data"]["conveyor_task_id"]) == []  # left unlabeled


class SlowReceiver:
    """A webhook receiver slower than Label Studio waits for (it answers after 3 s)."""

    def __init__(self) -> None:
        self.calls = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                owner.calls += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(3)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slow"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_annotations_made_while_conveyor_is_down_or_too_slow_arrive_once(
    labeling: httpx.Client,  # noqa: F811
    uploader: httpx.Client,
    studio: LabelStudioClient,
    services: dict[str, ServiceProcess],
) -> None:
    scene = start(labeling, uploader, studio, photos=22)
    (project,) = scene.projects()
    tasks = scene.ls_tasks(project["project_id"], 22)

    # labeling-dispatch is down while 20 annotations are made: Label Studio's webhooks fail
    services["labeling"].stop()
    try:
        for index, task in enumerate(tasks[:20]):
            studio.annotate(task["id"], (5.0 + index, 5.0, 20.0, 20.0))
    finally:
        services["labeling"].start()
    task_ids = [t["data"]["conveyor_task_id"] for t in tasks]
    eventually(lambda: all(scene.annotations(t) for t in task_ids[:20]), timeout=60)
    time.sleep(2.5)
    assert [len(scene.annotations(t)) for t in task_ids[:20]] == [1] * 20

    # a receiver slower than Label Studio's 1 s: its webhook gives up, reconcile does not
    slow = SlowReceiver()
    try:
        hooks = studio.http.get("/api/webhooks/", params={"project": project["project_id"]})
        (hook,) = hooks.json()
        moved = studio.http.patch(
            f"/api/webhooks/{hook['id']}/", json={"url": slow.url, "actions": hook["actions"]}
        )
        assert moved.status_code == 200, moved.text
        for task in tasks[20:]:
            studio.annotate(task["id"], (30.0, 30.0, 10.0, 10.0), label="person")
        eventually(lambda: all(scene.annotations(t) for t in task_ids[20:]), timeout=30)
        eventually(lambda: slow.calls >= 2, timeout=20)  # Label Studio did call it
        assert [len(scene.annotations(t)) for t in task_ids[20:]] == [1, 1]
    finally:
        slow.close()
    stats = labeling.get(f"/v1/jobs/{scene.job_id}").json()
    assert stats["total"]["submitted"] == 22, stats


def test_replicas_go_to_different_projects_and_need_different_labelers(
    labeling: httpx.Client,  # noqa: F811
    uploader: httpx.Client,
    studio: LabelStudioClient,
) -> None:
    scene = start(labeling, uploader, studio, photos=1, overlap=2)
    passes = scene.projects(count=2)
    assert [p["pass_no"] for p in passes] == [1, 2]
    (one,) = scene.ls_tasks(passes[0]["project_id"], 1)
    (two,) = scene.ls_tasks(passes[1]["project_id"], 1)
    assert one["data"]["image"].split("?")[0] == two["data"]["image"].split("?")[0]
    first_task, second_task = one["data"]["conveyor_task_id"], two["data"]["conveyor_task_id"]
    assert first_task != second_task

    studio.annotate(one["id"], (10.0, 10.0, 20.0, 20.0))
    eventually(lambda: scene.annotations(first_task), timeout=30)
    # the same labeler on the other replica: refused, replicas need different people
    studio.annotate(two["id"], (11.0, 10.0, 20.0, 20.0))
    refusals = eventually(lambda: scene.refusals(second_task), timeout=30)
    assert refusals[0]["reason"] == "same_annotator"
    # another labeler (an annotator account in Label Studio) answers it
    other = studio.user()
    studio.annotate(two["id"], (12.0, 10.0, 20.0, 20.0), completed_by=other)
    (stored,) = eventually(lambda: scene.annotations(second_task), timeout=30)
    assert stored["annotator_id"].startswith("label-studio:labeler-")


def test_the_cli_registers_a_label_studio_vendor_and_shows_where_a_job_is_labeled(
    labeling: httpx.Client,  # noqa: F811
    uploader: httpx.Client,
    labeling_url: str,
    studio: LabelStudioClient,
) -> None:
    name = f"cli-ls-{uuid.uuid4().hex[:6]}"
    created = as_json(labeling_url, "vendors", "create", name, "--kind", "label_studio")
    assert (created["kind"], created["url"]) == ("label_studio", endpoints.LABEL_STUDIO_URL)
    refused = conveyor(
        labeling_url, "vendors", "create", f"{name}-bad", "--kind", "label_studio", "--token", "no"
    )
    assert refused.returncode != 0 and "label_studio_unreachable" in refused.stderr

    scene = start(labeling, uploader, studio, photos=1)
    (project,) = scene.projects()
    shown = conveyor(labeling_url, "jobs", "label-studio", scene.job_id)
    assert shown.returncode == 0, shown.stderr
    assert project["project_url"] in shown.stdout.replace("\n", "")
