"""The review queue through `conveyor reviews` against the running services: two vendors
disagree, a reviewer sends the asset back, the vendors see the comment and answer again, QC
accepts; a rejection is made once, and only by a key that may decide."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY
from tests.e2e.test_labeling_dispatch import (  # noqa: F401 (fixtures)
    Scene,
    labeling,
    ontology,
    other_vendor,
    scene,
    vendor,
)
from tests.e2e.test_qc_pipeline import answer, answer_overlap_two
from tests.vendor_simulator import ReceivedDelivery, VendorSimulator
from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("services")

COMMENT = "the car is further left"


def conveyor(qc_url: str, *args: str, key: str = ADMIN_KEY) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CONVEYOR_API_KEY": key}
    return subprocess.run(
        [sys.executable, "-m", "conveyor_cli.main", "--qc-url", qc_url, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def as_json(qc_url: str, *args: str) -> Any:
    result = conveyor(qc_url, "--json", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def in_review(qc_url: str, job_id: str) -> str:
    """The asset of the job's one review waiting for a person."""
    [review] = eventually(
        lambda: as_json(qc_url, "reviews", "list", "--job", job_id)["items"], timeout=60
    )
    assert review["state"] == "review" and review["round"] == 0
    return str(review["asset_id"])


def second_delivery(simulator: VendorSimulator) -> ReceivedDelivery:
    deliveries = eventually(lambda: (got := simulator.acknowledged())[1:] and got, timeout=60)
    return deliveries[-1]


def test_a_disagreement_sent_back_for_rework_is_accepted_once_the_vendors_agree(
    scene: Scene,  # noqa: F811
    other_vendor: VendorSimulator,  # noqa: F811
    qc_url: str,
) -> None:
    job_id = answer_overlap_two(scene, other_vendor, 20, 400)
    asset_id = in_review(qc_url, job_id)

    shown = conveyor(qc_url, "reviews", "show", job_id, asset_id)
    assert shown.returncode == 0, shown.stderr
    assert "Answers" in shown.stdout and "replica 1" in shown.stdout
    detail = as_json(qc_url, "reviews", "show", job_id, asset_id)
    assert len(detail["answers"]) == 2 and detail["consensus"] is not None

    sent = as_json(qc_url, "reviews", "rework", job_id, asset_id, "--comment", COMMENT)
    assert (sent["state"], sent["round"], sent["comment"]) == ("rework", 1, COMMENT)

    for simulator, x in ((scene.vendor, 100.0), (other_vendor, 104.0)):
        again = second_delivery(simulator)
        [task] = again.payload["tasks"]
        assert task["rework_comment"] == COMMENT
        posted = simulator.post_annotations(
            scene.labeling_url,
            again.payload["vendor_id"],
            [answer(task["task_id"], f"worker-{again.payload['vendor_id'][:8]}", x)],
        )
        assert posted.status_code == 200, posted.text

    accepted = eventually(
        lambda: as_json(qc_url, "reviews", "list", "--job", job_id, "--state", "accepted")["items"],
        timeout=60,
    )
    assert [r["asset_id"] for r in accepted] == [asset_id]
    final = as_json(qc_url, "reviews", "show", job_id, asset_id)
    assert final["round"] == 1 and final["decided_by"] == "qc"
    [car] = final["label_set"]
    assert abs(car["bbox"]["x"] - 102.0) < 1e-6


def test_a_rejection_is_made_once_and_only_by_a_key_that_may_decide(
    scene: Scene,  # noqa: F811
    other_vendor: VendorSimulator,  # noqa: F811
    qc_url: str,
    viewer_key: str,
) -> None:
    job_id = answer_overlap_two(scene, other_vendor, 20, 400)
    asset_id = in_review(qc_url, job_id)

    refused = conveyor(
        qc_url, "reviews", "reject", job_id, asset_id, "--comment", "no", key=viewer_key
    )
    assert refused.returncode == 1
    assert "uploader or admin" in refused.stderr

    rejected = as_json(qc_url, "reviews", "reject", job_id, asset_id, "-m", "too dark to label")
    assert (rejected["state"], rejected["comment"]) == ("rejected", "too dark to label")

    again = conveyor(qc_url, "reviews", "accept", job_id, asset_id)
    assert again.returncode == 1
    assert "rejected" in again.stderr and "only a review in state 'review'" in again.stderr
    listed = as_json(qc_url, "reviews", "list", "--job", job_id, "--state", "rejected")
    assert [r["asset_id"] for r in listed["items"]] == [asset_id]
