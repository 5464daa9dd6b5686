"""QC export benchmark: a 20 000-image / 100 000-box dataset version exported as COCO and as
YOLO, time and peak RSS of the process doing it.

Synthetic accepted labels are inserted straight into QC's tables in a fresh database
(``conveyor_bench_qc``): a dataset, its ontology version (10 classes), N assets (sha256, name,
1920x1080) and one accepted-labels row per asset with B boxes. The version is frozen through
QC's own use case (timed). Each export then runs in a fresh process of its own (so its peak RSS
is the export's, not the set-up's): it requests the export and builds it through QC's use cases,
exactly what the service's background loop runs, while reading its progress back through
``get_export`` as the API would, every 0.5 s. Images are linked (``images=links``): there are no
image bytes to copy, and the work measured is the labels, the manifest and 20 000 presigned URLs.

Targets (the issue): < 60 s and < 300 MiB for each export. Figures go to
``bench/out/qc_export.json``. Label Studio's own COCO export of the same project is not run
(not done in this round; see docs/qc.md). Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import resource
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine  # noqa: E402

from deploy.sandbox import recreate_database  # noqa: E402
from services.qc import models  # noqa: E402
from services.qc.context import SOURCE, Qc  # noqa: E402
from services.qc.settings import QcSettings  # noqa: E402
from shared import endpoints  # noqa: E402
from shared.auth import Principal, Role  # noqa: E402
from shared.db import migrate  # noqa: E402
from shared.storage import ObjectStore  # noqa: E402
from shared.uow import UnitsOfWork  # noqa: E402

DATABASE = "conveyor_bench_qc"
DATABASE_URL = endpoints.postgres_url(DATABASE, driver="asyncpg")
CLASSES = [f"class-{i}" for i in range(10)]
WIDTH, HEIGHT = 1920, 1080
BENCH = Principal("bench-key", "bench", Role.uploader)
OUT = ROOT / "bench" / "out" / "qc_export.json"
INSERT_BATCH = 2000


def mib(kib: int) -> float:
    return round(kib / 1024, 1)


def qc_context() -> tuple[Qc, Any]:
    settings = QcSettings(database_url=DATABASE_URL, consumer_group="bench-qc")
    engine = create_async_engine(DATABASE_URL, pool_size=4)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    units = UnitsOfWork(
        sessions,
        outbox=models.outbox,
        inbox=models.inbox,
        source=SOURCE,
        consumer=settings.consumer_group,
    )
    return Qc(settings, units, ObjectStore(settings)), engine


def synthetic_boxes(rng: random.Random, count: int) -> list[dict[str, Any]]:
    shapes = []
    for _ in range(count):
        w, h = rng.uniform(5, 400), rng.uniform(5, 300)
        x, y = rng.uniform(0, WIDTH - w), rng.uniform(0, HEIGHT - h)
        shapes.append(
            {
                "class": rng.choice(CLASSES),
                "type": "bbox",
                "bbox": {
                    "x": round(x, 2),
                    "y": round(y, 2),
                    "width": round(w, 2),
                    "height": round(h, 2),
                },
            }
        )
    return shapes


async def prepare(images: int, boxes: int) -> dict[str, Any]:
    """A fresh database with the synthetic accepted labels, and version 1 frozen."""
    from services.qc.use_cases import versions

    await recreate_database(DATABASE)
    await migrate(ROOT / "services" / "qc" / "migrations", DATABASE_URL, "qc")
    qc, engine = qc_context()
    rng = random.Random(11)
    dataset_id, ontology_id, job_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    slug = "bench-export"
    started = time.perf_counter()
    async with qc.units.begin() as uow:
        uow.session.add(models.KnownDataset(id=dataset_id, slug=slug))
        uow.session.add(
            models.OntologyVersion(
                ontology_id=ontology_id, version=1, name="bench", classes=CLASSES
            )
        )
    now = datetime.now(UTC)
    for start in range(0, images, INSERT_BATCH):
        assets, labels = [], []
        for n in range(start, min(start + INSERT_BATCH, images)):
            asset_id = uuid.uuid4()
            assets.append(
                {
                    "id": asset_id,
                    "dataset_id": dataset_id,
                    "sha256": f"{rng.getrandbits(256):064x}",
                    "filename": f"frame_{n:06d}.jpg",
                    "media_type": "image/jpeg",
                    "width": WIDTH,
                    "height": HEIGHT,
                }
            )
            labels.append(
                {
                    "asset_id": asset_id,
                    "dataset_id": dataset_id,
                    "job_id": job_id,
                    "ontology_id": ontology_id,
                    "ontology_version": 1,
                    "shapes": synthetic_boxes(rng, boxes),
                    "annotation_ids": [uuid.uuid4()],
                    "accepted_by": "bench",
                    "accepted_at": now,
                }
            )
        async with qc.units.begin() as uow:
            await uow.session.execute(insert(models.KnownAsset), assets)
            await uow.session.execute(insert(models.AcceptedLabels), labels)
    inserted = time.perf_counter() - started
    started = time.perf_counter()
    view = await versions.freeze(qc, BENCH, slug)
    frozen = time.perf_counter() - started
    await qc.store.aclose()
    await engine.dispose()
    return {
        "slug": slug,
        "images": view.version.item_count,
        "shapes": view.version.shape_count,
        "insert_seconds": round(inserted, 2),
        "freeze_seconds": round(frozen, 2),
    }


async def _export(slug: str, fmt: str) -> dict[str, Any]:
    from services.qc.use_cases import exports

    qc, engine = qc_context()
    await qc.store.ensure_buckets()
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    view = await exports.request_export(qc, BENCH, slug, 1, fmt, "links")  # type: ignore[arg-type]
    build = asyncio.create_task(exports.build_next(qc))
    samples: list[tuple[float, int, int, str]] = []
    while True:
        now = await exports.get_export(qc, BENCH, view.export.id)
        e = now.export
        samples.append((round(time.perf_counter() - started, 1), e.done, e.total, e.state))
        if e.state in ("done", "failed"):
            break
        await asyncio.sleep(0.5)
    await build
    seconds = time.perf_counter() - started
    await qc.store.aclose()
    await engine.dispose()
    return {
        "format": fmt,
        "state": e.state,
        "error": e.error,
        "seconds": round(seconds, 2),
        "peak_rss_mib": mib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss),
        "rss_before_export_mib": mib(baseline),
        "zip_bytes": e.size,
        "annotations": e.annotation_count,
        "progress_samples": samples,
    }


def export_in_child(slug: str, fmt: str, queue: Any) -> None:
    try:
        queue.put(asyncio.run(_export(slug, fmt)))
    except BaseException as exc:
        queue.put({"format": fmt, "failed": f"{type(exc).__name__}: {exc}"})
        raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--boxes", type=int, default=5, help="boxes per image")
    args = parser.parse_args()
    setup = asyncio.run(prepare(args.images, args.boxes))
    print(
        f"set-up: {setup['images']} images, {setup['shapes']} boxes inserted in "
        f"{setup['insert_seconds']} s; version frozen in {setup['freeze_seconds']} s"
    )
    context = multiprocessing.get_context("spawn")
    results = []
    for fmt in ("coco", "yolo"):
        queue = context.Queue()
        child = context.Process(target=export_in_child, args=(setup["slug"], fmt, queue))
        child.start()
        result = queue.get()
        child.join()
        if "failed" in result:
            raise SystemExit(f"{fmt}: the export process failed: {result['failed']}")
        results.append(result)
        seen = sorted({s[1] for s in result["progress_samples"]})
        print(
            f"{fmt}: {result['state']} in {result['seconds']} s, peak RSS "
            f"{result['peak_rss_mib']} MiB ({result['rss_before_export_mib']} MiB before the "
            f"export), zip {result['zip_bytes']} bytes, {result['annotations']} annotations; "
            f"{len(result['progress_samples'])} progress reads, {len(seen)} distinct 'done' values"
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"setup": setup, "exports": results}, indent=2))
    print(f"figures in {OUT}")


if __name__ == "__main__":
    main()
