"""Signed vendor webhooks through the running services: upload -> clean -> job -> dispatch to a
vendor simulator -> its signed answers (and forged, stale, replayed, foreign ones) back."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from services.labeling_dispatch.domain.signatures import DELIVERY_HEADER, SIGNATURE_HEADER, sign
from tests.e2e.test_labeling_dispatch import (  # noqa: F401 (fixtures)
    Scene,
    labeling,
    ontology,
    other_vendor,
    scene,
    vendor,
)
from tests.vendor_simulator import VendorSimulator, bbox_answer
from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("services")


def refusals_of(client: httpx.Client, task_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/tasks/{task_id}/refusals")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def audit_records(auditor: httpx.Client, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = auditor.get(
        "/v1/audit/records", params={"limit": 1000, **params}
    ).json()["items"]
    return items


def test_signed_answers_accepted_once_and_every_refusal_recorded_and_audited(
    scene: Scene,  # noqa: F811
    auditor: httpx.Client,
    other_vendor: VendorSimulator,  # noqa: F811
) -> None:
    labeling, labeling_url, vendor = scene.labeling, scene.labeling_url, scene.vendor  # noqa: F811
    vendor_id, _ = scene.start(2)
    other_id = scene.register(other_vendor)
    vendor.wait_for_deliveries(1, acknowledged=True)
    first, second = eventually(lambda: len(vendor.held_task_ids()) >= 2 and vendor.held_task_ids())[
        :2
    ]

    def post(answers: list[dict[str, Any]], **kwargs: Any) -> httpx.Response:
        return vendor.post_annotations(labeling_url, vendor_id, answers, **kwargs)

    # refused, each recorded, nothing changed
    assert post([bbox_answer(first)], secret="forged").status_code == 401
    assert post([bbox_answer(first)], secret=other_vendor.secret).status_code == 401
    stale = post([bbox_answer(first)], timestamp=int(time.time()) - 600)
    assert (stale.status_code, stale.json()["error"]["code"]) == (401, "signature_expired")
    unsigned = httpx.post(
        f"{labeling_url}/v1/vendors/{vendor_id}/webhook",
        content=json.dumps({"annotations": [bbox_answer(first)]}),
        headers={DELIVERY_HEADER: "u-1", "Content-Type": "application/json"},
    )
    assert (unsigned.status_code, unsigned.json()["error"]["code"]) == (401, "missing_signature")

    def signed_raw(body: bytes, delivery: str) -> httpx.Response:
        headers = {
            SIGNATURE_HEADER: sign(vendor.secret, body, int(time.time())),
            DELIVERY_HEADER: delivery,
        }
        return httpx.post(
            f"{labeling_url}/v1/vendors/{vendor_id}/webhook", content=body, headers=headers
        )

    huge = b'{"annotations": [' + b" " * (1024 * 1024 + 10) + b"]}"
    assert signed_raw(huge, "big").status_code == 413
    bad_json = signed_raw(b"{not json", "m-1")
    assert (bad_json.status_code, bad_json.json()["error"]["code"]) == (422, "invalid_payload")
    foreign = other_vendor.post_annotations(labeling_url, other_id, [bbox_answer(first)])
    assert (foreign.status_code, foreign.json()["error"]["code"]) == (404, "task_not_found")
    unknown = post([bbox_answer(str(uuid.uuid4()))])
    assert unknown.status_code == 404
    invalid = post([bbox_answer(first, cls="truck")])
    assert invalid.status_code == 422
    assert invalid.json()["error"]["details"]["problems"][0]["code"] == "unknown_class"
    assert labeling.get(f"/v1/tasks/{first}/annotations").json()["items"] == []

    # accepted once, even when the same delivery races itself
    body = [bbox_answer(first), bbox_answer(second, annotator="annotator-2")]
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: post(body, delivery_id="race-1"), range(2)))
    assert [a.status_code for a in answers] == [200, 200]
    assert sorted(a.json()["duplicate"] for a in answers) == [False, True]
    assert answers[0].json()["annotation_ids"] == answers[1].json()["annotation_ids"]
    replay = post(body, delivery_id="race-1")
    assert replay.json()["duplicate"] is True
    stored = labeling.get(f"/v1/tasks/{first}/annotations").json()["items"]
    assert len(stored) == 1 and stored[0]["vendor_id"] == vendor_id
    again = post([bbox_answer(first)])
    assert (again.status_code, again.json()["error"]["code"]) == (409, "task_already_answered")

    reasons = {r["reason"] for r in refusals_of(labeling, first)}
    assert {"invalid_annotation", "replayed", "task_already_answered", "task_not_found"} <= reasons

    # the audit log has every refusal and the acceptance, the asset's timeline the annotation
    def audited() -> list[dict[str, Any]] | None:
        found = audit_records(auditor, type="conveyor.annotation.refused.v1")
        mine = [r for r in found if r["payload"].get("vendor_id") in (vendor_id, other_id, None)]
        codes = {r["payload"]["reason"] for r in mine}
        wanted = {"invalid_signature", "signature_expired", "missing_signature",
                  "payload_too_large", "invalid_payload", "task_not_found",
                  "invalid_annotation", "replayed", "task_already_answered"}  # fmt: skip
        return mine if wanted <= codes else None

    eventually(audited, timeout=30)
    submitted = eventually(
        lambda: [
            r
            for r in audit_records(auditor, type="conveyor.annotation.submitted.v1")
            if r["payload"]["task_id"] == first
        ],
        timeout=30,
    )
    asset_id = submitted[0]["payload"]["asset_id"]
    timeline = auditor.get(f"/v1/audit/assets/{asset_id}/timeline").json()["items"]
    assert "conveyor.annotation.submitted.v1" in {r["type"] for r in timeline}
