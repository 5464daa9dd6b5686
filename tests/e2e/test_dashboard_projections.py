"""The dashboard's projections count exactly: through a kill -9 mid-stream, and after a rebuild
from scratch by replaying the topics.

500 uploads with known outcomes land over HTTP, ten files a request: 400 distinct good
photos, 20 dark ones, 30 truncated JPEGs, and 50 lossless PNG copies of earlier good photos
(the same pixels in other bytes: ingest stores them as assets of their own, clean rejects them
as exact duplicates). The dashboard is killed with SIGKILL while they land and started again;
its funnel then counts stored 500, cleaned 400, rejected 100 and each rejection reason
exactly. Then the dashboard is stopped, ``python -m services.dashboard rebuild`` empties its
projections and rewinds its consumer group, and after a start the replay gives the same funnel
and the same throughput totals.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from deploy.services import ServiceProcess
from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("services")

ROOT = Path(__file__).resolve().parents[2]
# Large enough for ORB keypoints: a near-duplicate candidate is then verified, not decided by
# its hash alone. At 96 x 72 (6 x 8 cells) almost no picture had keypoints enough, and about
# one random seed in six gave two unrelated pictures within the hash radius (a flaky reject).
SIZE = (192, 144)
CELLS = (12, 16)
GOOD, DARK, TRUNCATED, COPIES = 400, 20, 30, 50
FILES_PER_REQUEST = 10
EXPECTED_STAGES = {"stored": GOOD + DARK + TRUNCATED + COPIES, "cleaned": GOOD, "rejected": 100}
# A truncated JPEG is reported both as truncated and as undecodable.
EXPECTED_REASONS = {
    "exact_duplicate": COPIES,
    "truncated": TRUNCATED,
    "decode_failed": TRUNCATED,
    "dark": DARK,
}


def picture(seed: int) -> np.ndarray:
    """A small colour image no other seed's resembles (random cells, sensor-like noise):
    sharp, mid-bright, far apart in perceptual hash and rich in keypoints (so a candidate is
    refused by verification), so clean keeps every one."""
    rng = np.random.default_rng(seed)
    cells = rng.integers(50, 210, (*CELLS, 3)).astype(np.uint8)
    img = cv2.resize(cells, SIZE, interpolation=cv2.INTER_NEAREST).astype(np.float32)
    img += rng.normal(0, 10, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def encoded(pixels: np.ndarray, ext: str = ".jpg") -> bytes:
    ok, data = cv2.imencode(ext, pixels)
    assert ok
    return data.tobytes()


def stream(seed: int) -> list[tuple[str, bytes]]:
    """The 500 files in upload order; every copy comes after the photo it copies."""
    goods = [(f"good-{i}.jpg", encoded(picture(seed + i))) for i in range(GOOD)]
    darks = [
        (f"dark-{i}.jpg", encoded((picture(seed + 10_000 + i) * 0.15).astype(np.uint8)))
        for i in range(DARK)
    ]
    truncated = []
    for i in range(TRUNCATED):
        whole = encoded(picture(seed + 20_000 + i))
        truncated.append((f"truncated-{i}.jpg", whole[: len(whole) // 2]))
    copies = []
    for i in range(COPIES):
        name, jpeg = goods[i * 7]  # photos 0..343: all in the first part below
        pixels = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        copies.append((f"copy-of-{name}.png", encoded(pixels, ".png")))
    order = random.Random(seed)
    first = goods[:350] + darks + truncated
    second = goods[350:] + copies
    order.shuffle(first)
    order.shuffle(second)
    return first + second


class Uploads(threading.Thread):
    """Uploads the stream in the background, ten files a request; counts requests done."""

    def __init__(self, uploader: httpx.Client, slug: str, files: list[tuple[str, bytes]]):
        super().__init__(daemon=True)
        self.uploader, self.slug, self.files = uploader, slug, files
        self.done = 0
        self.failure: str | None = None

    def run(self) -> None:
        for start in range(0, len(self.files), FILES_PER_REQUEST):
            chunk = self.files[start : start + FILES_PER_REQUEST]
            response = self.uploader.post(
                f"/v1/datasets/{self.slug}/assets",
                files=[("files", (name, content)) for name, content in chunk],
            )
            if response.status_code != 201 or any(
                item.get("duplicate") for item in response.json()["items"]
            ):
                self.failure = f"{response.status_code}: {response.text[:500]}"
                return
            self.done += 1


def funnel(dashboard: httpx.Client, slug: str) -> dict[str, Any]:
    response = dashboard.get("/v1/funnel", params={"dataset": slug})
    assert response.status_code == 200, response.text
    body = response.json()
    cleaning = next(loss for loss in body["losses"] if loss["stage"] == "cleaning")
    return {
        "stages": {s["stage"]: s["count"] for s in body["stages"]},
        "reasons": {r["code"]: r["count"] for r in cleaning["reasons"]},
        "waiting": body["waiting"]["cleaning"],
    }


def throughput_totals(dashboard: httpx.Client, slug: str) -> dict[str, int]:
    response = dashboard.get("/v1/throughput", params={"dataset": slug})
    assert response.status_code == 200, response.text
    totals: Counter[str] = Counter()
    for series in response.json()["series"]:
        totals[series["stage"]] += sum(point["events"] for point in series["points"])
    return {stage: n for stage, n in totals.items() if n}


def events_applied(dashboard: httpx.Client) -> int:
    response = dashboard.get("/v1/changes")
    assert response.status_code == 200, response.text
    return int(response.json()["events_applied"])


def settled(dashboard: httpx.Client, slug: str) -> dict[str, Any] | None:
    """The funnel once every upload of the stream has its verdict projected."""
    try:
        now = funnel(dashboard, slug)
    except httpx.TransportError:  # the dashboard is starting again
        return None
    stages = now["stages"]
    done = stages["stored"] >= 500 and stages["cleaned"] + stages["rejected"] >= 500
    return now if done else None


def rebuild(process: ServiceProcess) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.dashboard", "rebuild"],
        cwd=ROOT,
        env={**os.environ, **process.env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_projections_count_500_uploads_exactly_through_kill_9_and_a_rebuild(
    services: dict[str, ServiceProcess],
    dashboard_url: str,
    uploader: httpx.Client,
    viewer_key: str,
    dataset: str,
) -> None:
    process = services["dashboard"]
    files = stream(seed=random.randrange(1_000_000))
    assert len(files) == 500
    with httpx.Client(
        base_url=dashboard_url, headers={"X-API-Key": viewer_key}, timeout=30
    ) as dashboard:
        try:
            start = events_applied(dashboard)
            uploads = Uploads(uploader, dataset, files)
            uploads.start()
            # kill -9 while uploads land and the dashboard is projecting them
            eventually(
                lambda: (
                    uploads.failure
                    or (uploads.done >= 15 and events_applied(dashboard) > start + 50)
                ),
                timeout=120,
                interval=0.05,
            )
            assert uploads.failure is None, uploads.failure
            process.kill()
            assert uploads.is_alive(), "the stream should still be landing"
            process.start()
            uploads.join(timeout=180)
            assert not uploads.is_alive() and uploads.failure is None, uploads.failure
            assert uploads.done == 50

            after_kill = eventually(lambda: settled(dashboard, dataset), timeout=180)
            stages = after_kill["stages"]
            assert {k: stages[k] for k in EXPECTED_STAGES} == EXPECTED_STAGES
            assert stages["uploaded"] == 500
            assert after_kill["reasons"] == EXPECTED_REASONS
            assert after_kill["waiting"] == 0
            totals = throughput_totals(dashboard, dataset)
            assert totals == EXPECTED_STAGES
            applied = events_applied(dashboard)

            # A running dashboard is not rebuilt under itself.
            refused = rebuild(process)
            assert refused.returncode != 0
            assert "stop the dashboard service first" in refused.stderr, refused.stderr
            assert funnel(dashboard, dataset) == after_kill

            process.stop()
            done = rebuild(process)
            assert done.returncode == 0, done.stderr
            assert "reset to the earliest offsets" in done.stdout, done.stdout
            process.start()
            # the replay applies at least every event applied before the rebuild
            eventually(lambda: events_applied(dashboard) >= applied, timeout=180)
            assert eventually(lambda: settled(dashboard, dataset), timeout=60) == after_kill
            assert throughput_totals(dashboard, dataset) == totals
        finally:
            if not process.running():
                process.start()
