"""Re-analysis over HTTP: a job re-measures stored files, and the API guards it."""

from __future__ import annotations

import asyncio
import hashlib
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


async def _sql(statement: str, *args: Any) -> None:
    conn = await asyncpg.connect(endpoints.postgres_url(TEST_DB))
    try:
        await conn.execute(statement, *args)
    finally:
        await conn.close()


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

        second = admin.post(f"/v1/datasets/{dataset}/reanalyses", json={"rejudge": False})
        assert second.status_code == 202, second.text
        cancelled = admin.post(f"/v1/reanalyses/{second.json()['id']}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["state"] == "cancelled"
        late = admin.post(f"/v1/reanalyses/{second.json()['id']}/cancel")
        assert late.status_code == 409 and late.json()["error"]["code"] == "reanalysis_finished"

        page = admin.get(f"/v1/datasets/{dataset}/reanalyses", params={"limit": 1}).json()
        assert [j["id"] for j in page["items"]] == [second.json()["id"]]
        rest = admin.get(
            f"/v1/datasets/{dataset}/reanalyses", params={"limit": 1, "cursor": page["next_cursor"]}
        ).json()
        assert [j["id"] for j in rest["items"]] == [job["id"]] and rest["next_cursor"] is None
