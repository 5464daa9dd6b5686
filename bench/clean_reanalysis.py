"""Re-analysis speed: files per second of a job against the consumer's first pass.

In-process on the local stack (Postgres, SeaweedFS), no Kafka: a fresh database
``conveyor_bench_reanalysis`` with clean's migrations, N generated 640x480 JPEGs (photo-like
scenes of several kinds, JPEG quality 70-95) put in conveyor-raw. First the consumer's use case
(``cleaning.clean_assets``, runs of ``batch_size`` with ``analysis_threads`` files at a time)
measures and judges them: the peer. Then re-analysis jobs run through
``ReanalysisRunner`` (the service's background runner) at concurrency 1 (the default) and 2.
Printed: files/s of each, and each job's ratio to the consumer pass measured in the same run
and to the floor, the image checks alone on bytes in memory (one thread, no store, no database).

``flock /tmp/conveyor-stack-session.lock .venv/bin/python bench/clean_reanalysis.py [N]``.
Not a test.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy.sandbox import recreate_database
from services.clean.checks import analyze_image
from services.clean.checks.budget import DecodeBudget
from services.clean.context import SOURCE, Clean
from services.clean.models import QualityReport, inbox, outbox
from services.clean.near_index import NearIndex
from services.clean.settings import CleanSettings
from services.clean.use_cases import cleaning, datasets, reanalysis
from shared.auth import Principal, Role
from shared.endpoints import postgres_url
from shared.events import (
    ASSET_INGESTED,
    DATASET_CREATED,
    INGEST_EVENTS,
    AssetIngestedV1,
    DatasetCreatedV1,
    Envelope,
)
from shared.routing import Event
from shared.storage import RAW_BUCKET, ObjectStore, content_address
from shared.uow import UnitsOfWork

ROOT = Path(__file__).resolve().parents[1]
DATABASE = "conveyor_bench_reanalysis"
ADMIN = Principal(key_id="bench", name="bench", role=Role.admin)


def scene(seed: int) -> NDArray[np.uint8]:
    """A 640x480 picture of one of three kinds: shapes on a gradient, stripes, textured noise."""
    rng = np.random.default_rng(seed)
    img = np.zeros((480, 640, 3), np.float32)
    img += np.linspace(30, 200, 640, dtype=np.float32)[None, :, None] * rng.uniform(0.5, 1, 3)
    kind = seed % 3
    if kind == 0:
        for _ in range(12):
            colour = [int(c) for c in rng.integers(0, 256, 3)]
            centre = (int(rng.integers(0, 640)), int(rng.integers(0, 480)))
            cv2.circle(img, centre, int(rng.integers(10, 90)), colour, -1)
    elif kind == 1:
        period = int(rng.integers(8, 40))
        img[:, (np.arange(640) // period) % 2 == 1] *= 0.5
        cv2.rectangle(img, (100, 80), (400, 300), (220, 40, 40), -1)
    else:
        img += cv2.resize(rng.normal(0, 40, (60, 80, 3)).astype(np.float32), (640, 480))
    img += rng.normal(0, 10, img.shape).astype(np.float32)
    ok, data = cv2.imencode(
        ".jpg",
        np.clip(img, 0, 255).astype(np.uint8),
        [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 96))],
    )
    assert ok
    return np.frombuffer(data.tobytes(), np.uint8)


async def main(count: int) -> None:
    await recreate_database(DATABASE)
    url = postgres_url(DATABASE, driver="asyncpg")
    env = {**os.environ, "CONVEYOR_DATABASE_URL": url, "CONVEYOR_LOG_LEVEL": "WARNING"}
    migrate = [sys.executable, "-m", "services.clean", "migrate"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True, capture_output=True)
    engine = create_async_engine(url, pool_size=10)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    settings = CleanSettings(database_url=url, consumer_group="bench-reanalysis")
    units = UnitsOfWork(
        sessions, outbox=outbox, inbox=inbox, source=SOURCE, consumer=settings.consumer_group
    )
    store = ObjectStore(settings)
    await store.ensure_buckets((RAW_BUCKET,))
    budget = DecodeBudget(settings.decode_memory_mb * 1024 * 1024)
    clean = Clean(settings, units, store, NearIndex(settings.near_index_max_hashes), budget)
    cv2.setNumThreads(1)  # as the service's lifespan does
    dataset_id, slug = uuid.uuid4(), f"bench-{uuid.uuid4().hex[:8]}"
    created = DatasetCreatedV1(dataset_id=dataset_id, slug=slug, name=slug, created_by="bench")
    await datasets.remember_dataset(
        clean, Event(_envelope(DATASET_CREATED.name, created), "", created)
    )

    events = []
    for i in range(count):
        data = scene(i).tobytes()
        sha256 = hashlib.sha256(data).hexdigest()
        key = content_address(sha256)
        await store.put_stream(RAW_BUCKET, key, io.BytesIO(data), len(data), "image/jpeg")
        asset_id = uuid.uuid4()
        payload = AssetIngestedV1(
            asset_id=asset_id,
            dataset_id=dataset_id,
            dataset_slug=slug,
            sha256=sha256,
            size_bytes=len(data),
            media_type="image/jpeg",
            filename=f"{i}.jpg",
            source="upload",
            uploaded_by="bench",
            bucket=RAW_BUCKET,
            object_key=key,
        )
        events.append(Event(_envelope(ASSET_INGESTED.name, payload), INGEST_EVENTS.name, payload))
    threads = settings.analysis_threads
    print(f"{count} 640x480 JPEGs stored")
    # the floor: the image checks alone on bytes in memory, one thread, no store, no database
    files = [scene(i).tobytes() for i in range(count)]
    started = time.perf_counter()
    for data in files:
        analyze_image(data)
    floor = count / (time.perf_counter() - started)
    print(f"  image checks alone, one thread: {floor:.1f} files/s")
    print(f"  consumer pass (analysis_threads={threads}):", end=" ", flush=True)
    started = time.perf_counter()
    for at in range(0, count, settings.batch_size):
        await cleaning.clean_assets(clean, events[at : at + settings.batch_size])
    consumer = count / (time.perf_counter() - started)
    print(f"{consumer:.1f} files/s")
    for concurrency in (1, 2):
        clean.settings.reanalysis_concurrency = concurrency
        runner = reanalysis.ReanalysisRunner(clean, engine)
        job = await reanalysis.start(clean, runner, ADMIN, slug, rejudge=True)
        started = time.perf_counter()
        task = asyncio.create_task(runner.run())
        while (state := await reanalysis.get(clean, ADMIN, job.id)).state in ("queued", "running"):
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - started
        task.cancel()
        rate = state.done / elapsed
        print(
            f"  re-analysis, concurrency {concurrency}: {state.state}, {state.done} done,"
            f" {state.failed} failed, {rate:.1f} files/s (job's own figure"
            f" {state.rate_per_second or 0:.1f}), {rate / consumer:.2f} x the consumer pass,"
            f" {rate / floor:.2f} x the checks alone"
        )
    await _source_write_cost(engine, events)
    await store.aclose()
    await engine.dispose()


async def _source_write_cost(engine: AsyncEngine, events: list[Event[AssetIngestedV1]]) -> None:
    """What keeping each report's asset.ingested payload costs the consumer's write: the same
    runs of 32 report rows inserted with and without it (rolled back), alternating."""
    template = {
        "dataset_id": uuid.uuid4(),
        "media_type": "image/jpeg",
        "status": "cleaned",
        "metrics": {f"metric_{i}": 0.5 for i in range(16)},
        "structural": [],
        "reasons": [],
        "flags": [],
        "policy_version": 0,
    }
    payloads = [e.payload.model_dump(mode="json") for e in events[:32]]
    timings: dict[str, list[float]] = {"without": [], "with": []}
    async with engine.connect() as connection:
        for round_ in range(60):
            for kind in ("without", "with"):
                rows = [
                    {
                        **template,
                        "asset_id": uuid.uuid4(),
                        "arrival": round_ * 100 + i,
                        **({"ingested": payload} if kind == "with" else {}),
                    }
                    for i, payload in enumerate(payloads)
                ]
                transaction = await connection.begin()
                started = time.perf_counter()
                await connection.execute(insert(QualityReport), rows)
                timings[kind].append(time.perf_counter() - started)
                await transaction.rollback()
    without, with_ = (float(np.median(timings[k])) * 1000 for k in ("without", "with"))
    print(
        f"  insert of 32 reports, median of 60: {without:.2f} ms without the stored source,"
        f" {with_:.2f} ms with it ({with_ / without:.2f} x), that is"
        f" {(with_ - without) / 32 * 1000:.0f} us per asset"
    )


def _envelope(kind: str, payload: DatasetCreatedV1 | AssetIngestedV1) -> Envelope:
    return Envelope(
        id=str(uuid.uuid4()),
        source="/conveyor/ingest",
        type=kind,
        time=datetime.now(UTC),
        data=payload.model_dump(mode="json"),
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
