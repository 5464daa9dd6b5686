"""Re-analysis over HTTP: a job re-measures stored files, and the API guards it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import uuid
from functools import partial
from typing import Any

import asyncpg
import httpx
import pytest

from shared import endpoints
from shared.storage import RAW_BUCKET, content_address
from tests.conftest import ADMIN_KEY, TEST_DB, minio_client
from tests.e2e.test_clean_pipeline import encode, photo
from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("services")


async def _sql(statement: str, *args: Any) -> list[Any]:
    conn = await asyncpg.connect(endpoints.postgres_url(TEST_DB))
    try:
        return list(await conn.fetch(statement, *args))
    finally:
        await conn.close()


# A job as a process that died leaves it: running, checkpointed after the dataset's third
# report (by arrival), three done.
_CRASHED = """
INSERT INTO clean.reanalyses (id, dataset_id, dataset_slug, state, rejudge, requested_by, total,
    done, failed, changed, last_arrival, until_arrival, failures, started_at, resumed_at,
    processed_at_resume)
SELECT $1, dataset_id, $2, 'running', true, 'crashed', 5, 3, 0, 0,
    (array_agg(arrival ORDER BY arrival))[3], max(arrival), '[]', now(), now(), 3
FROM clean.quality_reports WHERE dataset_id = $3 GROUP BY dataset_id
"""


def test_reanalysis_remeasures_stored_files_and_is_one_admin_job_per_dataset(
    uploader: httpx.Client, viewer_key: str, clean_url: str, dataset: str
) -> None:
    files = {f"photo-{i}.jpg": encode(photo(100 + i)) for i in range(5)}
    ids = {}
    for name, content in files.items():
        response = uploader.post(
            f"/v1/datasets/{dataset}/assets", files=[("files", (name, content))]
        )
        assert response.status_code == 201, response.text
        ids[name] = response.json()["items"][0]["id"]
    admin = httpx.Client(base_url=clean_url, headers={"X-API-Key": ADMIN_KEY}, timeout=30)
    viewer = httpx.Client(base_url=clean_url, headers={"X-API-Key": viewer_key}, timeout=30)
    with admin, viewer:

        def report(asset_id: str) -> dict[str, Any] | None:
            response = admin.get(f"/v1/assets/{asset_id}/quality")
            return response.json() if response.status_code == 200 else None

        before = {n: eventually(partial(report, i), timeout=60) for n, i in ids.items()}
        # A metric the stored report lacks (as if measured before it existed), and a file gone.
        erased = sorted(before["photo-0.jpg"]["metrics"])[0]
        asyncio.run(
            _sql(
                "UPDATE clean.quality_reports SET metrics = metrics - $1::text WHERE asset_id = $2",
                erased,
                uuid.UUID(ids["photo-0.jpg"]),
            )
        )
        assert erased not in report(ids["photo-0.jpg"])["metrics"]  # type: ignore[index]
        gone = hashlib.sha256(files["photo-4.jpg"]).hexdigest()
        minio_client().remove_object(RAW_BUCKET, content_address(gone))

        refused = viewer.post(f"/v1/datasets/{dataset}/reanalyses", json={})
        assert refused.status_code == 403, refused.text

        started = admin.post(f"/v1/datasets/{dataset}/reanalyses", json={"rejudge": True})
        assert started.status_code == 202, started.text
        job = started.json()
        assert job["state"] in ("queued", "running") and job["total"] == 5
        again = admin.post(f"/v1/datasets/{dataset}/reanalyses")
        assert again.status_code == 409, again.text
        assert again.json()["error"]["details"]["reanalysis_id"] == job["id"]

        seen_states = set()

        def finished() -> dict[str, Any] | None:
            body = viewer.get(f"/v1/reanalyses/{job['id']}").json()  # viewers may watch
            seen_states.add(body["state"])
            return body if body["state"] not in ("queued", "running") else None

        final = eventually(finished, timeout=30, interval=0.05)
        assert final["state"] == "succeeded", final
        assert (final["done"], final["failed"], final["remaining"]) == (4, 1, 0)
        assert final["failures"][0]["asset_id"] == ids["photo-4.jpg"]
        assert final["failures"][0]["reason"].startswith("missing_object")
        assert final["rate_per_second"] > 0 and final["finished_at"] is not None
        print(f"re-analysis: {final['rate_per_second']:.1f} files/s, states seen {seen_states}")

        after = report(ids["photo-0.jpg"])
        assert after is not None
        assert after["metrics"] == before["photo-0.jpg"]["metrics"]  # the erased metric is back
        assert after["updated_at"] > before["photo-0.jpg"]["updated_at"]
        assert after["status"] == "cleaned" and final["changed"] == 0

        dataset_id = after["dataset_id"]
        order = "SELECT asset_id::text, updated_at FROM clean.quality_reports"
        order += " WHERE dataset_id = $1 ORDER BY arrival"
        stamps = asyncio.run(_sql(order, uuid.UUID(dataset_id)))
        crashed = uuid.uuid4()
        asyncio.run(_sql(_CRASHED, crashed, dataset, uuid.UUID(dataset_id)))
        # picked up at the runner's next poll (5 s), then only the last two are read again
        resumed = eventually(
            lambda: (
                body
                if (body := admin.get(f"/v1/reanalyses/{crashed}").json())["state"] == "succeeded"
                else None
            ),
            timeout=30,
            interval=0.1,
        )
        rest_ids = [row["asset_id"] for row in stamps[3:]]
        lost = int(ids["photo-4.jpg"] in rest_ids)
        assert (resumed["done"], resumed["failed"]) == (3 + 2 - lost, lost), resumed
        restamped = {
            row["asset_id"]: row["updated_at"]
            for row in asyncio.run(_sql(order, uuid.UUID(dataset_id)))
        }
        for row in stamps:
            moved = restamped[row["asset_id"]] != row["updated_at"]
            expected = row["asset_id"] in rest_ids and row["asset_id"] != ids["photo-4.jpg"]
            assert moved == expected, row["asset_id"]

        second = admin.post(f"/v1/datasets/{dataset}/reanalyses", json={"rejudge": False})
        assert second.status_code == 202, second.text
        cancelled = admin.post(f"/v1/reanalyses/{second.json()['id']}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["state"] == "cancelled"
        late = admin.post(f"/v1/reanalyses/{second.json()['id']}/cancel")
        assert late.status_code == 409 and late.json()["error"]["code"] == "reanalysis_finished"

        listed, cursor = [], None
        while True:
            params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
            page = admin.get(f"/v1/datasets/{dataset}/reanalyses", params=params).json()
            listed += [j["id"] for j in page["items"]]
            if (cursor := page["next_cursor"]) is None:
                break
        assert listed == [second.json()["id"], str(crashed), job["id"]]  # newest first


def test_backfilled_sources_let_older_reports_be_reanalysed(
    uploader: httpx.Client, viewer_key: str, clean_url: str, audit_url: str, dataset: str
) -> None:
    """Reports stored without their source (as before sources were kept) get it back from the
    audit trail through `conveyor quality backfill-sources`, and then re-analyse."""
    ids = []
    for i in range(3):
        response = uploader.post(
            f"/v1/datasets/{dataset}/assets",
            files=[("files", (f"old-{i}.jpg", encode(photo(300 + i))))],
        )
        assert response.status_code == 201, response.text
        ids.append(uuid.UUID(response.json()["items"][0]["id"]))
    count = "SELECT count(*) AS n FROM clean.quality_reports WHERE asset_id = ANY($1::uuid[])"
    eventually(lambda: asyncio.run(_sql(count, ids))[0]["n"] == 3 or None, timeout=60)
    with httpx.Client(base_url=audit_url, headers={"X-API-Key": ADMIN_KEY}, timeout=30) as audit:

        def audited(asset: uuid.UUID) -> bool | None:
            params = {"type": "conveyor.asset.ingested.v1", "subject": str(asset)}
            return bool(audit.get("/v1/audit/records", params=params).json()["items"]) or None

        for asset in ids:
            eventually(partial(audited, asset), timeout=60)
    forget = "UPDATE clean.quality_reports SET ingested = NULL WHERE asset_id = ANY($1::uuid[])"
    asyncio.run(_sql(forget, ids[:2]))

    viewer = httpx.Client(base_url=clean_url, headers={"X-API-Key": viewer_key}, timeout=30)
    with viewer:
        refused = viewer.post(f"/v1/datasets/{dataset}/sources", json={"assets": []})
        assert refused.status_code in (403, 422), refused.text

    env = {**os.environ, "CONVEYOR_API_KEY": ADMIN_KEY, "CONVEYOR_CLEAN_URL": clean_url}
    command = [sys.executable, "-m", "conveyor_cli.main", "--audit-url", audit_url]
    command += ["--json", "quality", "backfill-sources", dataset, "--batch", "2"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    totals = json.loads(done.stdout)
    assert (totals["received"], totals["stored"], totals["kept"]) == (3, 2, 1), totals
    assert totals["unknown"] == 0 and totals["read"] >= 3
    assert "audit records read" in done.stderr

    sources = "SELECT count(*) AS n FROM clean.quality_reports"
    sources += " WHERE asset_id = ANY($1::uuid[]) AND ingested ->> 'asset_id' = asset_id::text"
    assert asyncio.run(_sql(sources, ids))[0]["n"] == 3

    admin = httpx.Client(base_url=clean_url, headers={"X-API-Key": ADMIN_KEY}, timeout=30)
    with admin:
        started = admin.post(f"/v1/datasets/{dataset}/reanalyses", json={"rejudge": False})
        assert started.status_code == 202, started.text

        def finished() -> dict[str, Any] | None:
            body = admin.get(f"/v1/reanalyses/{started.json()['id']}").json()
            return body if body["state"] not in ("queued", "running") else None

        final = eventually(finished, timeout=30, interval=0.1)
    assert (final["state"], final["done"], final["failed"]) == ("succeeded", 3, 0), final
