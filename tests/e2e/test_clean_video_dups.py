"""A trimmed re-encode of an uploaded clip is rejected as a duplicate video, with where it
shows the original's footage, through the real ingest and clean services."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_KEY
from tests.e2e.test_clean_pipeline import photo, report, upload
from tests.media_video import write_clip
from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("services")


def test_a_trimmed_reencode_is_a_duplicate_video_with_its_time_range(
    tmp_path: Path, uploader: httpx.Client, clean_url: str, dataset: str
) -> None:
    scene = photo(21, (560, 360))[:, :, ::-1]
    # 5 s of a pan at 25 fps; the copy drops the first 1.2 s and is H.264 in Matroska
    pictures = [scene[i // 2 : i // 2 + 240, i * 2 : i * 2 + 320].copy() for i in range(125)]
    original = write_clip(tmp_path / "pan.mp4", pictures, codec="mpeg4")
    copy = write_clip(tmp_path / "cut.mkv", pictures[30:], codec="libx264", bit_rate=600_000)
    first = upload(uploader, dataset, "pan.mp4", original.read_bytes())
    with httpx.Client(base_url=clean_url, headers={"X-API-Key": ADMIN_KEY}, timeout=30) as clean:
        kept = eventually(lambda: report(clean, first), timeout=60)
        second = upload(uploader, dataset, "cut.mkv", copy.read_bytes())
        found = eventually(lambda: report(clean, second), timeout=60)
        groups = clean.get(f"/v1/datasets/{dataset}/duplicates").json()["groups"]

    assert kept["status"] == "cleaned", kept
    assert found["status"] == "rejected"
    assert {r["code"] for r in found["reasons"]} == {"video_duplicate"}
    assert found["duplicate_of"] == first and found["duplicate_kind"] == "video_duplicate"
    footage = found["duplicate_overlap"]
    assert footage["start"] == pytest.approx(0.0, abs=0.1)
    assert footage["end"] == pytest.approx(3.8, abs=0.1)
    assert footage["original_start"] == pytest.approx(1.2, abs=0.1)
    assert footage["original_end"] == pytest.approx(5.0, abs=0.1)
    assert groups == [
        {
            "original": first,
            "copies": [
                {"asset_id": second, "kind": "video_duplicate", "distance": 0, "overlap": footage}
            ],
        }
    ]
