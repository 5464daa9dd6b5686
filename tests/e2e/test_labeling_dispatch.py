"""Task batches out to webhook vendors (a simulator on 127.0.0.1) through the running services.

The session's labeling-dispatch retries on a schedule of seconds (first retry 0.2 s, at most
1 s apart, given up after 4 s, tries time out after 2 s: tests/conftest.py).
"""

from __future__ import annotations

import hashlib
import itertools
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from services.labeling_dispatch.domain.signatures import SignatureCheck, verify
from tests.conftest import ADMIN_KEY
from tests.e2e.test_clean_pipeline import encode, photo
from tests.vendor_simulator import ReceivedDelivery, VendorSimulator, bbox_answer
from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("services")

FIRST_RETRY, MAX_DELAY, HORIZON, TIMEOUT = 0.2, 1.0, 4.0, 2.0
# The dispatcher looks every 0.2 s; a retry may wait that much past its due time.
TICK = 0.25
_seeds = itertools.count(int(time.time()) % 100_000 * 100)


@pytest.fixture(scope="module")
def labeling(labeling_url: str) -> Iterator[httpx.Client]:
    """Labeling-dispatch with the admin key."""
    headers = {"X-API-Key": ADMIN_KEY}
    with httpx.Client(base_url=labeling_url, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def ontology(labeling: httpx.Client) -> str:
    name = f"dispatch-{uuid.uuid4().hex[:8]}"
    classes = [{"name": "car", "shape": "bbox"}]
    response = labeling.post("/v1/ontologies", json={"name": name, "classes": classes})
    assert response.status_code == 201, response.text
    return name


@pytest.fixture
def vendor() -> Iterator[VendorSimulator]:
    with VendorSimulator() as simulator:
        yield simulator


@pytest.fixture
def other_vendor() -> Iterator[VendorSimulator]:
    with VendorSimulator() as simulator:
        yield simulator


def upload_photos(uploader: httpx.Client, slug: str, count: int) -> dict[str, bytes]:
    """``count`` distinct photos uploaded to the dataset; their bytes by asset id."""
    uploaded = {}
    for _ in range(count):
        content = encode(photo(next(_seeds)))
        response = uploader.post(
            f"/v1/datasets/{slug}/assets", files=[("files", ("p.jpg", content))]
        )
        assert response.status_code == 201, response.text
        uploaded[str(response.json()["items"][0]["id"])] = content
    return uploaded


def register(
    labeling: httpx.Client, simulator: VendorSimulator, *, capacity: int = 100, batch: int = 25
) -> str:
    """A webhook vendor pointing at ``simulator``, which then knows its secret."""
    body = {
        "name": f"vendor-{uuid.uuid4().hex[:8]}",
        "kind": "webhook",
        "url": simulator.url,
        "capacity": capacity,
        "batch_size": batch,
    }
    response = labeling.post("/v1/vendors", json=body)
    assert response.status_code == 201, response.text
    simulator.secret = response.json()["secret"]
    return str(response.json()["id"])


def start_job(
    labeling: httpx.Client, slug: str, ontology: str, vendor_ids: list[str], lease: int = 3600
) -> str:
    """A job of the dataset for these vendors."""
    body = {
        "name": f"job-{uuid.uuid4().hex[:6]}",
        "dataset": slug,
        "ontology": ontology,
        "vendor_ids": vendor_ids,
        "lease_seconds": lease,
    }
    response = labeling.post("/v1/jobs", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@dataclass
class Scene:
    """A dataset, an ontology and a vendor simulator, and the labeling API to join them."""

    labeling: httpx.Client
    uploader: httpx.Client
    labeling_url: str
    dataset: str
    ontology: str
    vendor: VendorSimulator

    def photos(self, count: int) -> dict[str, bytes]:
        return upload_photos(self.uploader, self.dataset, count)

    def register(
        self, simulator: VendorSimulator | None = None, *, capacity: int = 100, batch: int = 25
    ) -> str:
        simulator = simulator or self.vendor
        return register(self.labeling, simulator, capacity=capacity, batch=batch)

    def job(self, vendor_ids: list[str], lease: int = 3600) -> str:
        return start_job(self.labeling, self.dataset, self.ontology, vendor_ids, lease)

    def start(self, photos: int, *, capacity: int = 100, batch: int = 25) -> tuple[str, str]:
        """Photos, the simulator as a vendor, a job: the vendor's and the job's ids."""
        self.photos(photos)
        vendor_id = self.register(capacity=capacity, batch=batch)
        return vendor_id, self.job([vendor_id])

    def log(self, **filters: str) -> list[dict[str, Any]]:
        response = self.labeling.get("/v1/deliveries", params=filters)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def detail(self, delivery_id: str | None) -> dict[str, Any]:
        response = self.labeling.get(f"/v1/deliveries/{delivery_id}")
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def settled(self, delivery_id: str | None) -> dict[str, Any]:
        """The delivery once it is no longer pending."""
        return eventually(
            lambda: (found := self.detail(delivery_id))["status"] != "pending" and found,
            timeout=30,
        )

    def progress(self, job_id: str) -> dict[str, int]:
        response = self.labeling.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        total: dict[str, int] = response.json()["total"]
        return total


@pytest.fixture
def scene(
    labeling: httpx.Client,
    uploader: httpx.Client,
    labeling_url: str,
    dataset: str,
    ontology: str,
    vendor: VendorSimulator,
) -> Scene:
    return Scene(labeling, uploader, labeling_url, dataset, ontology, vendor)


def gaps(tries: list[ReceivedDelivery]) -> list[float]:
    return [b.received_at - a.received_at for a, b in itertools.pairwise(tries)]


def test_a_batch_reaches_the_vendor_signed_with_its_secret_and_the_log_shows_it(
    scene: Scene,
) -> None:
    photos = scene.photos(3)
    vendor_id = scene.register()
    job_id = scene.job([vendor_id])
    vendor = scene.vendor

    eventually(lambda: len(vendor.held_task_ids()) >= 3, timeout=60)
    received = vendor.deliveries()
    assert all(d.signature is SignatureCheck.ok for d in received)
    first = received[0]
    signature = first.headers["Conveyor-Signature"]
    forged = verify("not-the-secret", signature, first.body, now=time.time(), tolerance=300)
    assert forged is SignatureCheck.mismatch
    assert first.headers["Content-Type"] == "application/json"
    body = first.payload
    assert body["delivery_id"] == first.delivery_id
    assert body["vendor_id"] == vendor_id
    assert body["job"]["id"] == job_id
    assert body["job"]["ontology"]["classes"][0]["name"] == "car"
    assert body["job"]["lease_seconds"] == 3600
    text = first.body.decode()
    assert "gold" not in text and not any(asset in text for asset in photos)
    # the link is the uploaded image itself
    digests = {hashlib.sha256(content).hexdigest() for content in photos.values()}
    for task in body["tasks"]:
        image = httpx.get(task["image"]["url"], timeout=30)
        assert image.status_code == 200
        assert hashlib.sha256(image.content).hexdigest() in digests
        assert (task["image"]["width"], task["image"]["height"]) == (640, 480)

    entries = eventually(
        lambda: [e for e in scene.log(vendor_id=vendor_id) if e["status"] == "delivered"]
    )
    entry = next(e for e in entries if e["id"] == first.delivery_id)
    assert entry["job_id"] == job_id
    assert entry["attempts"] == 1 and entry["last_status_code"] == 200
    assert entry["last_latency_ms"] > 0 and entry["delivered_at"]
    assert entry["task_count"] == len(body["tasks"])
    assert eventually(lambda: scene.progress(job_id)["dispatched"] == 3)


def test_failed_tries_follow_the_schedule_and_an_acknowledged_delivery_is_not_sent_again(
    scene: Scene,
) -> None:
    scene.vendor.fail_first = 3
    scene.start(1)

    scene.vendor.wait_for_deliveries(1, timeout=60, acknowledged=True)
    time.sleep(2 * MAX_DELAY)  # long enough for any retry that should not happen
    tries = scene.vendor.deliveries()
    assert [d.answered for d in tries] == [503, 503, 503, 200]
    assert len({d.delivery_id for d in tries}) == 1, "one delivery, tried four times"
    assert len({d.body for d in tries}) == 1, "the same bytes every time"
    for waited, delay in zip(gaps(tries), [0.2, 0.4, 0.8], strict=True):
        assert delay * 0.8 - 0.02 <= waited <= delay * 1.2 + TICK + 0.2, (waited, delay)

    found = scene.detail(tries[0].delivery_id)
    assert found["status"] == "delivered" and found["attempts"] == 4
    log = found["attempt_log"]
    assert [a["status_code"] for a in log] == [503, 503, 503, 200]
    assert [a["attempt"] for a in log] == [1, 2, 3, 4]
    assert all(a["latency_ms"] > 0 and not a["manual"] for a in log)
    assert log[0]["error"].startswith("HTTP 503")


def test_a_vendor_answering_410_is_not_retried(scene: Scene) -> None:
    scene.vendor.status = 410
    vendor_id, job_id = scene.start(2)

    first = scene.vendor.wait_for_deliveries(1, timeout=60)[0]
    found = scene.settled(first.delivery_id)
    assert found["status"] == "failed"
    assert found["attempts"] == 1 and found["last_status_code"] == 410
    assert found["next_attempt_at"] is None
    # its tasks are back in the queue; the vendor is left alone for a while, then tried anew
    assert eventually(lambda: scene.progress(job_id)["queued"] == 2)
    time.sleep(MAX_DELAY + 1)
    ids = [d.delivery_id for d in scene.vendor.deliveries()]
    assert len(ids) == len(set(ids)), "no delivery id was sent twice"
    assert all(e["attempts"] == 1 for e in scene.log(vendor_id=vendor_id, status="failed"))


def test_a_slow_vendor_is_tried_again_after_the_timeout(scene: Scene) -> None:
    scene.vendor.delay_seconds = TIMEOUT + 1
    scene.start(1)

    first = scene.vendor.wait_for_deliveries(1, timeout=60)[0]
    scene.vendor.delay_seconds = 0
    found = scene.settled(first.delivery_id)
    assert found["status"] == "delivered"
    log = found["attempt_log"]
    assert log[0]["status_code"] is None and "timeout" in log[0]["error"]
    assert log[0]["latency_ms"] >= TIMEOUT * 1000 * 0.9
    assert log[-1]["status_code"] == 200 and len(log) == 2


def test_a_vendor_never_holds_more_than_its_capacity(scene: Scene) -> None:
    vendor_id, job_id = scene.start(5, capacity=2, batch=5)
    vendor = scene.vendor

    answered: list[str] = []
    for _ in range(5):
        eventually(lambda: len(vendor.held_task_ids()) > len(answered), timeout=60)
        time.sleep(0.6)  # rounds enough to overfill, were capacity not kept
        held = [t for t in vendor.held_task_ids() if t not in answered]
        assert 1 <= len(held) <= 2, held
        counts = scene.progress(job_id)
        assert counts["assigned"] + counts["dispatched"] <= 2
        answer = vendor.post_annotations(scene.labeling_url, vendor_id, [bbox_answer(held[0])])
        assert answer.status_code == 200, answer.text
        answered.append(held[0])
    assert sorted(answered) == sorted(set(vendor.held_task_ids()))
    assert eventually(lambda: scene.progress(job_id)["submitted"] == 5)


def test_an_expired_lease_goes_to_the_other_vendor_and_a_late_answer_is_refused(
    scene: Scene, other_vendor: VendorSimulator
) -> None:
    scene.photos(1)
    ids = {scene.register(): scene.vendor, scene.register(other_vendor): other_vendor}
    scene.job(list(ids), lease=1)

    def holder() -> tuple[str, VendorSimulator] | None:
        return next(((i, v) for i, v in ids.items() if v.acknowledged()), None)

    first_id, first = eventually(holder, timeout=60)
    second_id, second = next((i, v) for i, v in ids.items() if i != first_id)
    task_id = first.held_task_ids()[0]
    eventually(lambda: task_id in second.held_task_ids(), timeout=20)
    assert first.held_task_ids() == [task_id], "the vendor that let it lapse gets it no more"

    late = first.post_annotations(scene.labeling_url, first_id, [bbox_answer(task_id)])
    assert late.status_code == 409, late.text
    on_time = second.post_annotations(scene.labeling_url, second_id, [bbox_answer(task_id)])
    assert on_time.status_code == 200, on_time.text


def test_a_failed_delivery_is_redelivered_by_hand_with_the_same_id_and_body(
    scene: Scene,
) -> None:
    scene.vendor.status = 422
    scene.start(1)
    first = scene.vendor.wait_for_deliveries(1, timeout=60)[0]
    assert scene.settled(first.delivery_id)["status"] == "failed"

    scene.vendor.status = 200
    response = scene.labeling.post(f"/v1/deliveries/{first.delivery_id}/redeliver")
    assert response.status_code == 200, response.text
    found = response.json()
    assert found["status"] == "delivered"
    assert [a["manual"] for a in found["attempt_log"]] == [False, True]
    again = scene.vendor.acknowledged()[-1]
    assert again.delivery_id == first.delivery_id and again.body == first.body

    twice = scene.labeling.post(f"/v1/deliveries/{first.delivery_id}/redeliver")
    assert twice.status_code == 409
    assert twice.json()["error"]["code"] == "delivery_not_failed"
    missing = scene.labeling.post(f"/v1/deliveries/{uuid.uuid4()}/redeliver")
    assert missing.status_code == 404


def test_a_delivery_to_a_vendor_disabled_meanwhile_fails_and_frees_its_tasks(
    scene: Scene,
) -> None:
    scene.vendor.fail_first = 1000
    vendor_id, job_id = scene.start(1)
    first = scene.vendor.wait_for_deliveries(1, timeout=60)[0]

    changed = scene.labeling.patch(f"/v1/vendors/{vendor_id}", json={"enabled": False})
    assert changed.status_code == 200, changed.text
    found = scene.settled(first.delivery_id)
    assert found["status"] == "failed"
    assert found["attempt_log"][-1]["error"] == "vendor disabled: not sent"
    assert eventually(lambda: scene.progress(job_id)["queued"] == 1)
    sent = len(scene.vendor.deliveries())
    time.sleep(MAX_DELAY + 0.5)
    assert len(scene.vendor.deliveries()) == sent, "nothing is sent to a disabled vendor"
