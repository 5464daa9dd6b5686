"""kill -9 of labeling-dispatch while 180 tasks are being dispatched and answered.

A vendor simulator acknowledges every batch and answers each task it receives, as a real
vendor would: from its own workers, retrying (under the same delivery id) until Conveyor says
200. Part-way through, the labeling-dispatch process is killed with SIGKILL and started again.
Afterwards every task was dispatched at least once, every delivery was recorded as
acknowledged exactly once, and every task has exactly one stored annotation and one
``conveyor.annotation.submitted.v1`` in the audit log.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from deploy.services import ServiceProcess
from tests.conftest import ADMIN_KEY
from tests.e2e.test_labeling_dispatch import register, upload_photos
from tests.vendor_simulator import ReceivedDelivery, VendorSimulator, bbox_answer
from tests.waiting import eventually

ASSETS, OVERLAP = 60, 3  # 180 tasks, all for one vendor (replicas for different annotators)
KILL_AFTER_ANSWERS = 60


class AnsweringVendor:
    """Answers every task it is delivered from two worker threads, retrying until accepted."""

    def __init__(self, simulator: VendorSimulator, labeling_url: str) -> None:
        self.simulator = simulator
        self.labeling_url = labeling_url
        self.vendor_id = ""
        self.work: queue.Queue[str | None] = queue.Queue()
        self.accepted: Counter[str] = Counter()
        self.duplicates = 0
        self.failures = 0
        self._lock = threading.Lock()
        self._workers = [threading.Thread(target=self._answer_all, daemon=True) for _ in range(2)]
        simulator.on_delivery = self._take

    def _take(self, delivery: ReceivedDelivery) -> None:
        for task_id in delivery.task_ids:
            self.work.put(task_id)

    def start(self) -> None:
        for worker in self._workers:
            worker.start()

    def stop(self) -> None:
        for _ in self._workers:
            self.work.put(None)

    def answered(self) -> int:
        with self._lock:
            return sum(self.accepted.values())

    def _answer_all(self) -> None:
        while (task_id := self.work.get()) is not None:
            self._answer(task_id)

    def _answer(self, task_id: str) -> None:
        # One delivery id per answer: a retry after a crash is a replay, never a second answer.
        delivery_id = f"answer-{task_id}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                response = self.simulator.post_annotations(
                    self.labeling_url,
                    self.vendor_id,
                    [bbox_answer(task_id, annotator=f"worker-{task_id[:4]}")],
                    delivery_id=delivery_id,
                    timeout=10,
                )
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            if response.status_code == 200:
                # A duplicate answer is the first one's: its response was lost in the crash
                # (the service had committed it), and the retry under the same id says so.
                with self._lock:
                    self.accepted[task_id] += 1
                    if response.json().get("duplicate"):
                        self.duplicates += 1
                return
            if response.status_code == 409:
                # the same task delivered again after the crash, already answered: fine
                return
            if response.status_code < 500:
                with self._lock:
                    self.failures += 1
                return
            time.sleep(0.2)
        with self._lock:
            self.failures += 1


@pytest.fixture
def simulator() -> Iterator[VendorSimulator]:
    with VendorSimulator() as vendor:
        yield vendor


def all_pages(client: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": 500, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, params=query)
        assert response.status_code == 200, response.text
        items.extend(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if not cursor:
            return items


def test_kill_9_while_180_tasks_are_dispatched_and_answered_loses_and_repeats_nothing(
    services: dict[str, ServiceProcess],
    uploader: httpx.Client,
    auditor: httpx.Client,
    clean_url: str,
    dataset: str,
    simulator: VendorSimulator,
) -> None:
    labeling_process = services["labeling"]
    url = labeling_process.url
    labeling = httpx.Client(base_url=url, headers={"X-API-Key": ADMIN_KEY}, timeout=30)
    ontology = f"crash-{uuid.uuid4().hex[:8]}"
    classes = [{"name": "car", "shape": "bbox"}]
    created = labeling.post("/v1/ontologies", json={"name": ontology, "classes": classes})
    assert created.status_code == 201, created.text
    upload_photos(uploader, dataset, ASSETS)

    vendor = AnsweringVendor(simulator, url)
    vendor.vendor_id = register(labeling, simulator, capacity=60, batch=20)
    vendor.start()
    job = labeling.post(
        "/v1/jobs",
        json={
            "name": "crash",
            "dataset": dataset,
            "ontology": ontology,
            "vendor_ids": [vendor.vendor_id],
            "overlap": OVERLAP,
        },
    )
    assert job.status_code == 201, job.text
    job_id = job.json()["id"]

    # Some assets may still be in clean when the job is created: they stream in afterwards.
    eventually(lambda: vendor.answered() >= KILL_AFTER_ANSWERS, timeout=120)
    labeling_process.kill()
    time.sleep(1.0)
    labeling_process.start()

    # Every image clean accepts becomes OVERLAP tasks (a generated photo it rejects, say as a
    # near duplicate of another, becomes none).
    def judged() -> int | None:
        summary = httpx.get(
            f"{clean_url}/v1/datasets/{dataset}/quality",
            headers={"X-API-Key": ADMIN_KEY},
            timeout=30,
        ).json()
        return int(summary["cleaned"]) if summary["assets"] == ASSETS else None

    cleaned = eventually(judged, timeout=120, interval=1.0)
    assert cleaned >= ASSETS * 0.9

    def finished() -> dict[str, int] | None:
        total: dict[str, int] = labeling.get(f"/v1/jobs/{job_id}").json()["total"]
        return total if total["submitted"] == cleaned * OVERLAP else None

    total = eventually(finished, timeout=180, interval=1.0)
    vendor.stop()
    assert total["queued"] == total["assigned"] == total["dispatched"] == 0

    tasks = all_pages(labeling, "/v1/tasks", job_id=job_id)
    task_ids = {t["id"] for t in tasks}
    assert len(task_ids) == cleaned * OVERLAP
    # every task reached the vendor at least once
    assert task_ids <= set(simulator.held_task_ids())
    # every answer was stored once, whatever was retried or replayed
    assert vendor.failures == 0
    # (a task delivered twice is answered twice under one delivery id: the second is a replay)
    assert set(vendor.accepted) == task_ids
    for task_id in task_ids:
        stored = labeling.get(f"/v1/tasks/{task_id}/annotations")
        assert stored.status_code == 200, stored.text
        assert len(stored.json()["items"]) == 1
    # every delivery recorded as acknowledged exactly once
    deliveries = all_pages(labeling, "/v1/deliveries", job_id=job_id)
    assert deliveries and all(d["status"] == "delivered" for d in deliveries)
    for delivery in deliveries:
        attempts = labeling.get(f"/v1/deliveries/{delivery['id']}").json()["attempt_log"]
        acknowledged = [a for a in attempts if a["status_code"] and 200 <= a["status_code"] < 300]
        assert len(acknowledged) == 1, attempts

    # one submitted event per task in the audit log
    def submitted_events() -> Counter[str] | None:
        response = auditor.get(
            "/v1/audit/export", params={"type": "conveyor.annotation.submitted.v1"}
        )
        assert response.status_code == 200, response.text
        answered = Counter(
            json.loads(line)["payload"]["task_id"]
            for line in response.text.splitlines()
            if line.strip()
        )
        mine = Counter({t: n for t, n in answered.items() if t in task_ids})
        return mine if len(mine) == len(task_ids) else None

    events = eventually(submitted_events, timeout=60, interval=1.0)
    assert set(events.values()) == {1}
