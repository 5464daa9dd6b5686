"""QC through the running services: upload -> clean -> a job of overlap 2 -> two vendor
simulators answer -> QC compares them and accepts the asset's labels, or does not.

QC has no read API of judging's own; what it decided is read where everyone reads it: the
audit service's records of QC's events (audit consumes every ``conveyor.*`` topic).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.test_labeling_dispatch import (  # noqa: F401 (fixtures)
    Scene,
    labeling,
    ontology,
    other_vendor,
    scene,
    vendor,
)
from tests.vendor_simulator import VendorSimulator
from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("services")

ACCEPTED = "conveyor.annotation.accepted.v1"
CONSENSUS = "conveyor.qc.consensus_computed.v1"


def answer(task_id: str, annotator: str, x: float) -> dict[str, Any]:
    box = {"x": x, "y": 40, "width": 120, "height": 80}
    shape = {"class": "car", "type": "bbox", "bbox": box, "attributes": {}}
    return {"task_id": task_id, "annotator_id": annotator, "shapes": [shape]}


def records_of_job(auditor: httpx.Client, event_type: str, job_id: str) -> list[dict[str, Any]]:
    response = auditor.get("/v1/audit/records", params={"type": event_type, "limit": 1000})
    assert response.status_code == 200, response.text
    return [r for r in response.json()["items"] if r["payload"]["job_id"] == job_id]


def answer_overlap_two(
    scene: Scene,  # noqa: F811
    second: VendorSimulator,
    x_first: float,
    x_second: float,
) -> str:
    """One photo, a job of overlap 2 over two vendors, each answering its replica with one
    car box at ``x_first`` / ``x_second``: the job's id."""
    scene.photos(1)
    first_id = scene.register()
    second_id = scene.register(second)
    body = {
        "name": f"qc-{uuid.uuid4().hex[:6]}",
        "dataset": scene.dataset,
        "ontology": scene.ontology,
        "vendor_ids": [first_id, second_id],
        "overlap": 2,
    }
    response = scene.labeling.post("/v1/jobs", json=body)
    assert response.status_code == 201, response.text
    job_id = str(response.json()["id"])
    for simulator, vendor_id, x in (
        (scene.vendor, first_id, x_first),
        (second, second_id, x_second),
    ):
        [task_id] = eventually(simulator.held_task_ids, timeout=60)
        posted = simulator.post_annotations(
            scene.labeling_url, vendor_id, [answer(task_id, f"worker-{vendor_id[:8]}", x)]
        )
        assert posted.status_code == 200, posted.text
    return job_id


def test_two_vendors_agreeing_get_the_asset_accepted_with_the_consensus_box(
    scene: Scene,  # noqa: F811
    other_vendor: VendorSimulator,  # noqa: F811
    auditor: httpx.Client,
) -> None:
    job_id = answer_overlap_two(scene, other_vendor, 100, 104)

    [accepted] = eventually(lambda: records_of_job(auditor, ACCEPTED, job_id), timeout=60)
    payload = accepted["payload"]
    assert payload["automatic"] is True and payload["decided_by"] == "qc"
    assert len(payload["annotation_ids"]) == 2
    [car] = payload["shapes"]
    assert car["class"] == "car" and abs(car["bbox"]["x"] - 102) < 1e-6
    [consensus] = records_of_job(auditor, CONSENSUS, job_id)
    assert consensus["payload"]["passed"] is True
    assert consensus["payload"]["asset_id"] == payload["asset_id"]


def test_two_vendors_disagreeing_leave_the_asset_for_review(
    scene: Scene,  # noqa: F811
    other_vendor: VendorSimulator,  # noqa: F811
    auditor: httpx.Client,
) -> None:
    job_id = answer_overlap_two(scene, other_vendor, 20, 400)

    [consensus] = eventually(lambda: records_of_job(auditor, CONSENSUS, job_id), timeout=60)
    assert consensus["payload"]["passed"] is False
    assert consensus["payload"]["unmatched_shapes"] == 2
    time.sleep(2)  # an acceptance would have been audited right after the consensus
    assert records_of_job(auditor, ACCEPTED, job_id) == []
