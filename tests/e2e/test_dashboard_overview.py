"""The dashboard's funnel, throughput, latency, search and change counter over real uploads."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.test_clean_pipeline import encode, photo, upload
from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("services")


@pytest.fixture
def board(dashboard_url: str, viewer_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dashboard_url, headers={"X-API-Key": viewer_key}, timeout=30) as c:
        yield c


def stages(board: httpx.Client, slug: str) -> dict[str, int]:
    body = board.get("/v1/funnel", params={"dataset": slug}).json()
    return {s["stage"]: s["count"] for s in body["stages"]}


def test_funnel_counts_uploads_verdicts_and_rejection_reasons(
    uploader: httpx.Client, board: httpx.Client, dataset: str
) -> None:
    before = board.get("/v1/changes").json()["events_applied"]
    good = [upload(uploader, dataset, f"good-{i}.jpg", encode(photo(100 + i))) for i in range(3)]
    corrupt = upload(uploader, dataset, "broken.jpg", encode(photo(7))[:300])
    counts = eventually(
        lambda: (c := stages(board, dataset))["cleaned"] + c["rejected"] == 4 and c, timeout=60
    )
    assert counts["uploaded"] == counts["stored"] == 4
    assert counts["cleaned"] == 3 and counts["rejected"] == 1
    assert counts["in_labeling"] == counts["accepted"] == counts["exported"] == 0
    funnel = board.get("/v1/funnel", params={"dataset": dataset}).json()
    cleaning = next(loss for loss in funnel["losses"] if loss["stage"] == "cleaning")
    assert cleaning["lost"] == 1 and cleaning["share"] == 0.25
    # an asset counts under each of its blocking reasons
    assert {r["code"] for r in cleaning["reasons"]} == {"decode_failed", "truncated"}
    assert all(r["count"] == 1 for r in cleaning["reasons"])
    assert board.get("/v1/changes").json()["events_applied"] > before

    throughput = board.get("/v1/throughput", params={"dataset": dataset}).json()
    per_stage = {s["stage"]: sum(p["events"] for p in s["points"]) for s in throughput["series"]}
    assert per_stage == {"stored": 4, "cleaned": 3, "rejected": 1}
    latency = board.get("/v1/latency", params={"dataset": dataset}).json()
    (upload_to_cleaned,) = [s for s in latency["series"] if s["name"] == "upload_to_cleaned"]
    assert sum(p["count"] for p in upload_to_cleaned["points"]) == 4
    assert all(0 <= p["p50"] <= p["p95"] < 60 for p in upload_to_cleaned["points"])

    found = board.get("/v1/assets/search", params={"q": "broken.jpg"}).json()["items"]
    assert [a["asset_id"] for a in found] == [corrupt]
    assert found[0]["verdict"] == "rejected" and len(found[0]["trace_id"]) == 32
    assert (
        board.get("/v1/assets/search", params={"q": good[0]}).json()["items"][0]["filename"]
        == "good-0.jpg"
    )


def test_filters_refuse_unknown_datasets_bad_windows_and_missing_keys(
    board: httpx.Client, dashboard_url: str
) -> None:
    response = board.get("/v1/funnel", params={"dataset": "no-such-dataset"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "dataset_not_found"
    window = {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}
    assert board.get("/v1/throughput", params=window).status_code == 400
    assert board.get("/v1/funnel", params={"since": "yesterday"}).status_code == 422
    assert httpx.get(f"{dashboard_url}/v1/funnel").status_code == 401
