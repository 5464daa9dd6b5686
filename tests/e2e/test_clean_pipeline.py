"""Upload a mixed set over HTTP; each file gets a quality report and the right event."""

from __future__ import annotations

import asyncio
import json

import cv2
import httpx
import numpy as np
import pytest
from aiokafka import AIOKafkaProducer

from tests.conftest import ADMIN_KEY, KAFKA
from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("services")


def photo(seed: int, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """A photo-like colour image: gradient, shapes, texture."""
    rng = np.random.default_rng(seed)
    w, h = size
    img = np.zeros((h, w, 3), np.float32)
    img += np.linspace(30, 200, w, dtype=np.float32)[None, :, None] * rng.uniform(0.5, 1, 3)
    for _ in range(12):
        color = [int(c) for c in rng.integers(0, 256, 3)]
        center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.circle(img, center, int(rng.integers(10, 90)), color, -1)
    img += rng.normal(0, 12, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def encode(pixels: np.ndarray, ext: str = ".jpg", *params: int) -> bytes:
    ok, data = cv2.imencode(ext, pixels, list(params))
    assert ok
    return data.tobytes()


def upload(client: httpx.Client, slug: str, name: str, content: bytes) -> str:
    response = client.post(f"/v1/datasets/{slug}/assets", files=[("files", (name, content))])
    assert response.status_code == 201, response.text
    return str(response.json()["items"][0]["id"])


def report(clean: httpx.Client, asset_id: str) -> dict | None:
    response = clean.get(f"/v1/assets/{asset_id}/quality")
    return response.json() if response.status_code == 200 else None


def test_mixed_upload_gets_one_verdict_per_file_with_every_reason(
    uploader: httpx.Client, auditor: httpx.Client, clean_url: str, dataset: str
):
    good = photo(1)
    jpeg = encode(good, ".jpg", cv2.IMWRITE_JPEG_QUALITY, 92)
    files = {
        "good.jpg": jpeg,
        "other.jpg": encode(photo(2)),
        "blurry.jpg": encode(cv2.GaussianBlur(good, (0, 0), 6)),
        "dark.jpg": encode((good * 0.08).astype(np.uint8)),
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "same-pixels.png": encode(cv2.imdecode(np.frombuffer(jpeg, np.uint8), 1), ".png"),
        "half-size.jpg": encode(cv2.resize(good, (320, 240), interpolation=cv2.INTER_AREA)),
    }
    ids = {name: upload(uploader, dataset, name, content) for name, content in files.items()}
    headers = {"X-API-Key": ADMIN_KEY}
    with httpx.Client(base_url=clean_url, headers=headers, timeout=30) as clean:
        reports = {
            name: eventually(lambda i=asset_id: report(clean, i), timeout=60)
            for name, asset_id in ids.items()
        }
        reasons = {n: {r["code"] for r in rep["reasons"]} for n, rep in reports.items()}
        assert reports["good.jpg"]["status"] == "cleaned", reports["good.jpg"]
        assert reports["other.jpg"]["status"] == "cleaned", reports["other.jpg"]
        assert "blurry" in reasons["blurry.jpg"]
        assert "dark" in reasons["dark.jpg"]
        assert "truncated" in reasons["truncated.jpg"]
        assert reasons["same-pixels.png"] == {"exact_duplicate"}
        assert reports["same-pixels.png"]["duplicate_of"] == ids["good.jpg"]
        assert "near_duplicate" in reasons["half-size.jpg"]
        assert reports["half-size.jpg"]["duplicate_of"] == ids["good.jpg"]
        for rep in reports.values():
            for reason in rep["reasons"]:
                assert reason["message"]
        blurry = next(r for r in reports["blurry.jpg"]["reasons"] if r["code"] == "blurry")
        assert blurry["value"] < blurry["threshold"]

        summary = clean.get(f"/v1/datasets/{dataset}/quality").json()
        assert summary["assets"] == len(files)
        assert summary["cleaned"] == 2
        assert summary["rejections_by_reason"]["exact_duplicate"] == 1
        groups = clean.get(f"/v1/datasets/{dataset}/duplicates").json()["groups"]
        assert len(groups) == 1 and groups[0]["original"] == ids["good.jpg"]
        # pHash survives blur and darkening too, so those copies of good.jpg join the group.
        assert {ids["same-pixels.png"], ids["half-size.jpg"]} <= {
            c["asset_id"] for c in groups[0]["copies"]
        }

        # The verdicts are events on conveyor.clean.events, which the audit log records.
        timeline = eventually(
            lambda: [
                r["type"]
                for r in auditor.get(f"/v1/audit/assets/{ids['blurry.jpg']}/timeline").json()[
                    "items"
                ]
                if r["type"] == "conveyor.asset.rejected.v1"
            ]
        )
        assert timeline == ["conveyor.asset.rejected.v1"]

        # Loosen the blur threshold: the blurry file is re-judged from stored metrics.
        policy = clean.get(f"/v1/datasets/{dataset}/policy").json()
        assert policy["checks"]["blurry"]["action"] == "reject"
        changed = clean.put(
            f"/v1/datasets/{dataset}/policy",
            json={"actions": {"dark": "flag"}, "thresholds": {"blurry": 0.0}},
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["assets_changed"] >= 2
        blurry_now = {r["code"] for r in report(clean, ids["blurry.jpg"])["reasons"]}
        assert "blurry" not in blurry_now
        dark = report(clean, ids["dark.jpg"])
        assert "dark" not in {r["code"] for r in dark["reasons"]}
        assert "dark" in {f["code"] for f in dark["flags"]}
        bad = clean.put(f"/v1/datasets/{dataset}/policy", json={"actions": {"nope": "flag"}})
        assert bad.status_code == 422


def test_event_for_a_missing_object_is_dead_lettered_and_clean_keeps_going(
    uploader: httpx.Client, auditor: httpx.Client, clean_url: str, dataset: str
):
    poison = {
        "asset_id": "00000000-0000-4000-8000-000000000001",
        "dataset_id": "00000000-0000-4000-8000-000000000002",
        "dataset_slug": dataset,
        "sha256": "0" * 64,
        "size_bytes": 10,
        "media_type": "image/jpeg",
        "filename": "ghost.jpg",
        "source": "upload",
        "uploaded_by": "tests",
        "tags": [],
        "bucket": "conveyor-raw",
        "object_key": "sha256/00/00/does-not-exist",
    }

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=KAFKA)
        await producer.start()
        try:
            await producer.send_and_wait(
                "conveyor.ingest.events",
                json.dumps(poison).encode(),
                key=poison["asset_id"].encode(),
                headers=[
                    ("ce_specversion", b"1.0"),
                    ("ce_id", b"ghost-asset-event"),
                    ("ce_source", b"/tests"),
                    ("ce_type", b"conveyor.asset.ingested.v1"),
                    ("ce_time", b"2026-01-01T00:00:00Z"),
                    ("content-type", b"application/json"),
                ],
            )
        finally:
            await producer.stop()

    asyncio.run(produce())
    letters = eventually(
        lambda: [
            r["payload"]
            for r in auditor.get(
                "/v1/audit/records", params={"type": "conveyor.dead_letter.v1", "limit": 1000}
            ).json()["items"]
            if r["payload"]["original_event_id"] == "ghost-asset-event"
        ],
        timeout=60,
    )
    assert letters[0]["consumer_group"].startswith("conveyor-clean")
    assert "MissingObject" in letters[0]["error"]
    # ...and the next real upload is still checked.
    asset_id = upload(uploader, dataset, "after.jpg", encode(photo(9)))
    with httpx.Client(base_url=clean_url, headers={"X-API-Key": ADMIN_KEY}) as clean:
        assert eventually(lambda: report(clean, asset_id), timeout=60)["status"] == "cleaned"


def clip(tmp_path, name: str, frames: list[np.ndarray], fps: float = 25.0) -> bytes:
    path = tmp_path / name
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (160, 120))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path.read_bytes()


def test_videos_are_checked_streamed_from_the_store(
    tmp_path, uploader: httpx.Client, clean_url: str, dataset: str
):
    scene = photo(5, (320, 240))
    moving = [
        np.ascontiguousarray(scene[i : i + 120, i * 2 : i * 2 + 160]) for i in range(75)
    ]  # 3 s of panning
    frozen = moving[:10] + [moving[10]] * 65  # 2.6 s without a change
    good = clip(tmp_path, "pan.avi", moving)
    ids = {
        "pan.avi": upload(uploader, dataset, "pan.avi", good),
        "frozen.avi": upload(uploader, dataset, "frozen.avi", clip(tmp_path, "f.avi", frozen)),
        "cut.avi": upload(uploader, dataset, "cut.avi", good[: len(good) // 2]),
    }
    with httpx.Client(base_url=clean_url, headers={"X-API-Key": ADMIN_KEY}, timeout=30) as clean:
        reports = {n: eventually(lambda i=i: report(clean, i), timeout=60) for n, i in ids.items()}
    assert reports["pan.avi"]["status"] == "cleaned", reports["pan.avi"]
    assert reports["pan.avi"]["metrics"]["duration_seconds"] == pytest.approx(3.0, abs=0.1)

    # Frames of the accepted video become image assets of the dataset, linked to it.
    def frames() -> list[dict]:
        items = uploader.get(
            f"/v1/datasets/{dataset}/assets", params={"source": "frame", "limit": 100}
        ).json()["items"]
        return items if len(items) >= 3 else []

    sampled = eventually(frames, timeout=60)
    assert {f["parent_asset_id"] for f in sampled} == {ids["pan.avi"]}
    assert sorted(f["frame_time_seconds"] for f in sampled)[:3] == pytest.approx([0, 1, 2])
    assert {f["media_type"] for f in sampled} == {"image/jpeg"}
    frame = uploader.get(f"/v1/assets/{sampled[0]['id']}").json()
    assert httpx.get(frame["download_url"]).content[:3] == b"\xff\xd8\xff"
    # No frames for the rejected videos.
    parents = {f["parent_asset_id"] for f in frames()}
    assert ids["frozen.avi"] not in parents and ids["cut.avi"] not in parents
    assert "frozen" in {r["code"] for r in reports["frozen.avi"]["reasons"]}
    assert reports["cut.avi"]["status"] == "rejected"
    assert {r["code"] for r in reports["cut.avi"]["reasons"]} & {
        "truncated",
        "missing_index",
        "decode_errors",
        "frame_count_mismatch",
    }
