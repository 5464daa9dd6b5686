"""The dashboard's cleaning page (reasons over time, rejected grid, histograms, duplicates),
asset page and thumbnails over real uploads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import cv2
import httpx
import numpy as np
import pytest

from services.dashboard.context import Dashboard
from services.dashboard.repository.queries import Window
from services.dashboard.settings import DashboardSettings
from services.dashboard.use_cases import cleaning
from services.dashboard.use_cases.filters import Filter
from tests.conftest import minio_client
from tests.e2e.test_clean_pipeline import encode, photo, upload
from tests.media import video
from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("services")


@pytest.fixture
def board(dashboard_url: str, viewer_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dashboard_url, headers={"X-API-Key": viewer_key}, timeout=60) as c:
        yield c


@pytest.fixture
def judged(uploader: httpx.Client, board: httpx.Client, dataset: str) -> dict[str, str]:
    """A fresh dataset with a good photo, a dark one, a blurry one, a corrupt file and an exact
    copy of the good photo, every one judged by clean and projected by the dashboard."""
    good = encode(photo(1), ".jpg", cv2.IMWRITE_JPEG_QUALITY, 92)
    files = {
        "good.jpg": good,
        "dark.jpg": encode((photo(4) * 0.08).astype(np.uint8)),
        "blurry.jpg": encode(cv2.GaussianBlur(photo(3), (0, 0), 6)),
        "corrupt.jpg": encode(photo(5))[:300],
        "copy.png": encode(cv2.imdecode(np.frombuffer(good, np.uint8), 1), ".png"),
    }
    ids = {name: upload(uploader, dataset, name, content) for name, content in files.items()}

    def all_judged() -> bool:
        body = board.get("/v1/funnel", params={"dataset": dataset}).json()
        counts = {s["stage"]: s["count"] for s in body["stages"]}
        return counts["cleaned"] + counts["rejected"] == len(files)

    eventually(all_judged, timeout=90)
    return ids


REJECTED = {"dark.jpg", "blurry.jpg", "corrupt.jpg", "copy.png"}


def test_reasons_over_time_count_each_rejection_and_flag_exactly(
    board: httpx.Client, judged: dict[str, str], dataset: str
) -> None:
    body = board.get("/v1/cleaning/reasons", params={"dataset": dataset}).json()
    rejected = {t["code"]: t["count"] for t in body["totals"] if t["kind"] == "rejected"}
    assert rejected == {
        "dark": 1,
        "blurry": 1,
        "truncated": 1,
        "decode_failed": 1,
        "exact_duplicate": 1,
    }
    assert body["bucket_seconds"] > 0
    # every total is the sum of its series' points
    for total in body["totals"]:
        (series,) = [
            s for s in body["series"] if (s["kind"], s["code"]) == (total["kind"], total["code"])
        ]
        assert sum(p["count"] for p in series["points"]) == total["count"]
    assert {t["kind"] for t in body["totals"]} <= {"rejected", "flagged"}


def test_rejected_grid_lists_the_rejected_files_newest_first_and_pages_through_them(
    board: httpx.Client, judged: dict[str, str], dataset: str
) -> None:
    page = board.get("/v1/cleaning/rejected", params={"dataset": dataset}).json()
    items = page["items"]
    assert page["next_cursor"] is None
    assert {i["filename"] for i in items} == REJECTED
    assert {i["asset_id"] for i in items} == {judged[name] for name in REJECTED}
    times = [(i["verdict_at"], i["asset_id"]) for i in items]
    assert times == sorted(times, reverse=True)
    by_name = {i["filename"]: i for i in items}
    assert "dark" in {r["code"] for r in by_name["dark.jpg"]["reasons"]}
    assert "exact_duplicate" in {r["code"] for r in by_name["copy.png"]["reasons"]}
    assert all(r["message"] for i in items for r in i["reasons"])
    assert by_name["dark.jpg"]["dataset_slug"] == dataset
    assert by_name["dark.jpg"]["thumbnail_url"] == f"/v1/assets/{judged['dark.jpg']}/thumbnail"

    walked: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"dataset": dataset, "limit": 1}
        if cursor:
            params["cursor"] = cursor
        one = board.get("/v1/cleaning/rejected", params=params).json()
        walked += [i["asset_id"] for i in one["items"]]
        cursor = one["next_cursor"]
        if cursor is None:
            break
    assert walked == [i["asset_id"] for i in items]

    bad = board.get("/v1/cleaning/rejected", params={"dataset": dataset, "cursor": "nope"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cursor"
    assert board.get("/v1/cleaning/rejected", params={"limit": 0}).status_code == 422
    assert board.get("/v1/cleaning/rejected", params={"limit": 201}).status_code == 422


def test_histograms_bin_every_metric_of_the_window_s_assets(
    board: httpx.Client, judged: dict[str, str], dataset: str
) -> None:
    body = board.get("/v1/cleaning/histograms", params={"dataset": dataset}).json()
    metrics = {m["metric"]: m for m in body["metrics"]}
    assert "mean_luminance" in metrics and "edge_sharpness" in metrics
    for m in metrics.values():
        assert sum(b["count"] for b in m["bins"]) == m["count"]
        assert 1 <= m["count"] <= len(judged)
        assert m["bins"][0]["low"] == m["min"] and m["bins"][-1]["high"] == m["max"]
        assert len(m["bins"]) in (1, 30)  # one bin when every value is the same
    # the four decodable images have a luminance; the corrupt file has none
    assert metrics["mean_luminance"]["count"] == 4
    narrowed = board.get(
        "/v1/cleaning/histograms",
        params={"dataset": dataset, "metric": "mean_luminance", "bins": 5},
    ).json()["metrics"]
    assert [m["metric"] for m in narrowed] == ["mean_luminance"]
    assert len(narrowed[0]["bins"]) == 5 and narrowed[0]["count"] == 4
    assert sum(b["count"] for b in narrowed[0]["bins"]) == 4
    params = {"dataset": dataset, "bins": 4}
    assert board.get("/v1/cleaning/histograms", params=params).status_code == 422


def test_duplicates_group_the_copy_under_its_original_with_file_names(
    board: httpx.Client, judged: dict[str, str], dataset: str
) -> None:
    body = board.get("/v1/cleaning/duplicates", params={"dataset": dataset}).json()
    assert body["error"] is None
    (group,) = [g for g in body["groups"] if g["original"]["asset_id"] == judged["good.jpg"]]
    assert group["original"]["filename"] == "good.jpg"
    assert group["original"]["thumbnail_url"] == f"/v1/assets/{judged['good.jpg']}/thumbnail"
    copy = next(c for c in group["copies"] if c["asset_id"] == judged["copy.png"])
    assert copy["filename"] == "copy.png" and copy["code"] == "exact_duplicate"
    missing = board.get("/v1/cleaning/duplicates", params={"dataset": "no-such-dataset"})
    assert missing.status_code == 404
    assert board.get("/v1/cleaning/duplicates").status_code == 422


def test_asset_page_joins_metadata_quality_timeline_chain_and_trace(
    board: httpx.Client, judged: dict[str, str], dataset: str
) -> None:
    asset_id = judged["good.jpg"]

    def page_with_verdict_recorded() -> dict[str, Any] | None:
        body: dict[str, Any] = board.get(f"/v1/assets/{asset_id}").json()
        types = {e["type"] for e in body["timeline"] or []}
        wanted = {"conveyor.asset.ingested.v1", "conveyor.asset.cleaned.v1"}
        return body if wanted <= types else None

    body = eventually(page_with_verdict_recorded, timeout=60)
    assert body["problems"] == []
    assert body["asset"]["asset_id"] == asset_id and body["asset"]["filename"] == "good.jpg"
    assert body["asset"]["dataset_slug"] == dataset and body["asset"]["verdict"] == "cleaned"
    assert body["metadata"]["filename"] == "good.jpg"
    assert body["metadata"]["sha256"] == body["asset"]["sha256"]
    assert body["quality"]["status"] == "cleaned" and "mean_luminance" in body["quality"]["metrics"]
    assert all(e["subject"] == asset_id and e["event_id"] for e in body["timeline"])
    seqs = [e["seq"] for e in body["timeline"]]
    assert seqs == sorted(seqs)
    assert body["chain"]["ok"] is True and body["chain"]["records_checked"] > 0
    trace = body["trace"]
    assert len(trace["trace_id"]) == 32 and trace["url"].endswith(trace["trace_id"])
    assert body["thumbnail_url"] == f"/v1/assets/{asset_id}/thumbnail"


def test_thumbnail_is_made_once_into_conveyor_derived_then_served_from_it(
    board: httpx.Client, judged: dict[str, str]
) -> None:
    asset_id = judged["good.jpg"]
    sha256 = board.get(f"/v1/assets/{asset_id}").json()["asset"]["sha256"]
    derived = f"thumbnails/{sha256}/256.jpg"
    # thumbnails are content-addressed: an earlier session may have made this one already
    minio_client().remove_object("conveyor-derived", derived)
    first = board.get(f"/v1/assets/{asset_id}/thumbnail")
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/jpeg"
    assert first.headers["x-thumbnail"] == "made"
    assert "max-age=86400" in first.headers["cache-control"]
    pixels = cv2.imdecode(np.frombuffer(first.content, np.uint8), cv2.IMREAD_COLOR)
    assert pixels is not None and max(pixels.shape[:2]) == 256 and pixels.shape[:2] == (192, 256)

    stored = minio_client().stat_object("conveyor-derived", derived)
    assert stored.size == len(first.content)

    second = board.get(f"/v1/assets/{asset_id}/thumbnail")
    assert second.headers["x-thumbnail"] == "cached" and second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    unchanged = board.get(
        f"/v1/assets/{asset_id}/thumbnail", headers={"If-None-Match": first.headers["etag"]}
    )
    assert unchanged.status_code == 304


def test_corrupt_file_has_no_thumbnail_and_unknown_assets_are_404(
    board: httpx.Client, judged: dict[str, str]
) -> None:
    corrupt = board.get(f"/v1/assets/{judged['corrupt.jpg']}/thumbnail")
    assert corrupt.status_code == 404 and corrupt.json()["error"]["code"] == "no_thumbnail"
    unknown = "00000000-0000-4000-8000-00000000abcd"
    for path in (f"/v1/assets/{unknown}", f"/v1/assets/{unknown}/thumbnail"):
        response = board.get(path)
        assert response.status_code == 404 and response.json()["error"]["code"] == "asset_not_found"
    assert board.get("/v1/assets/not-a-uuid").status_code == 422


def test_key_scoped_to_another_dataset_sees_none_of_these_assets(
    admin: httpx.Client, dashboard_url: str, judged: dict[str, str], dataset: str
) -> None:
    other = f"{dataset}-other"
    assert admin.post("/v1/datasets", json={"slug": other, "name": other}).status_code == 201
    created = admin.post(
        "/v1/api-keys", json={"name": "scoped-viewer", "role": "viewer", "datasets": [other]}
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    with httpx.Client(base_url=dashboard_url, headers={"X-API-Key": key}, timeout=30) as scoped:
        asset_id = judged["good.jpg"]
        for path in (f"/v1/assets/{asset_id}", f"/v1/assets/{asset_id}/thumbnail"):
            response = scoped.get(path)
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "asset_not_found"
        for path in ("/v1/cleaning/rejected", "/v1/cleaning/duplicates"):
            assert scoped.get(path, params={"dataset": dataset}).status_code == 404
        # without a dataset, the scoped key's pages hold only its own (empty) dataset
        assert scoped.get("/v1/cleaning/rejected").json()["items"] == []
        assert scoped.get("/v1/cleaning/reasons").json()["totals"] == []


def test_video_thumbnail_is_its_first_frame(
    uploader: httpx.Client, board: httpx.Client, dataset: str
) -> None:
    asset_id = upload(uploader, dataset, "clip.mp4", video(frames=5))

    def made() -> httpx.Response | None:
        response = board.get(f"/v1/assets/{asset_id}/thumbnail")
        return response if response.status_code == 200 else None

    response = eventually(made, timeout=60)
    pixels = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
    assert pixels is not None and max(pixels.shape[:2]) == 256


async def test_duplicates_say_why_instead_of_failing_when_clean_is_down() -> None:
    # nothing listens on the discard port: the call fails as if clean were down
    settings = DashboardSettings(clean_url="http://127.0.0.1:9", upstream_timeout_seconds=2)
    async with httpx.AsyncClient() as http:
        dashboard = Dashboard(settings, cast(Any, None), cast(Any, None), http)
        body = await cleaning.duplicates(dashboard, Filter(Window(None, None, None), "x"), "k")
    assert body["groups"] == []
    assert body["error"].startswith("clean: unreachable")
