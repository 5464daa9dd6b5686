"""kill -9 of qc while it judges a stream of 300 submitted annotations.

The test plays labeling-dispatch on the topics (an ontology version, a job with overlap 3, and
for 100 images their tasks and three answers of 10 boxes each: bench/qc.py's workload) while
qc is down, starts qc, kills it with SIGKILL part-way through and starts it again. Afterwards
every image has exactly one review, decided once (accepted, or held for a person), one
acceptance per accepted image in the audit log, and the vendor's scorecard counts every answer
and every decision exactly once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from bench.qc import OVERLAP, publish, workload
from deploy.services import ServiceProcess
from shared.events import AnnotationSubmittedV1, JobCreatedV1
from tests.conftest import ADMIN_KEY
from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("services")

IMAGES = 100


def reviews(qc: httpx.Client, job_id: str, state: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"job_id": job_id, "state": state, "limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = qc.get("/v1/reviews", params=params)
        assert page.status_code == 200, page.text
        found += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return found


def test_kill_9_while_judging_300_answers_decides_each_image_once(
    services: dict[str, ServiceProcess], qc_url: str, auditor: httpx.Client
) -> None:
    events, _ = workload(IMAGES, 10, seed=int(time.time()) % 10_000)
    job = next(e for e in events if isinstance(e, JobCreatedV1))
    vendor_id = str(job.vendor_ids[0])
    answers = [e for e in events if isinstance(e, AnnotationSubmittedV1)]
    assert len(answers) == IMAGES * OVERLAP >= 300
    job_id = str(job.job_id)

    process = services["qc"]
    process.stop()
    asyncio.run(publish(events))
    with httpx.Client(base_url=qc_url, headers={"X-API-Key": ADMIN_KEY}, timeout=30) as qc:
        process.start()
        # part-way: some images decided, not all
        eventually(
            lambda: 0 < len(reviews(qc, job_id, "accepted")) < IMAGES // 2,
            timeout=120,
            interval=0.05,
        )
        process.kill()
        process.start()

        def settled() -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
            accepted = reviews(qc, job_id, "accepted")
            held = reviews(qc, job_id, "review")
            return (accepted, held) if len(accepted) + len(held) == IMAGES else None

        accepted, held = eventually(settled, timeout=180)
        assert reviews(qc, job_id, "waiting") == []
        assets = [r["asset_id"] for r in accepted + held]
        assert len(set(assets)) == IMAGES
        assert len(accepted) >= IMAGES * 0.7, "a pixel or two of disagreement passes consensus"

        card = qc.get(f"/v1/vendors/{vendor_id}/scorecard").json()
        counters = card["counters"]
        assert counters["submitted"] == IMAGES * OVERLAP
        assert counters["accepted"] == len(accepted) * OVERLAP
        assert counters["agreement_count"] >= len(assets) * OVERLAP

    def audited() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = auditor.get(
            "/v1/audit/records",
            params={"type": "conveyor.annotation.accepted.v1", "limit": 1000},
        ).json()["items"]
        mine = [r for r in found if r["payload"]["job_id"] == job_id]
        return mine if len(mine) >= len(accepted) else None

    records = eventually(audited, timeout=60)
    per_asset: dict[str, int] = {}
    for record in records:
        per_asset[record["payload"]["asset_id"]] = (
            per_asset.get(record["payload"]["asset_id"], 0) + 1
        )
    assert set(per_asset) == {r["asset_id"] for r in accepted}
    assert set(per_asset.values()) == {1}, "each image accepted exactly once"
