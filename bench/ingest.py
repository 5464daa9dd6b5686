"""Ingest benchmark: upload throughput, upload→audit latency, memory during a 1 GiB upload.

Runs its own ingest and audit processes against the local stack (fresh database
``conveyor_bench``, fresh topics), then:

1. uploads N generated 640x480 JPEGs (default 2,000) with 16 concurrent clients as fast as
   they go: uploads/s and p50/p95 upload latency;
2. uploads M more at a steady 50 uploads/s: p50/p95 time from sending the upload to the
   audit record being written (the audit row's ``recorded_at``; one machine, one clock);
3. streams a 1 GiB file in one request while sampling the ingest process's RSS every 20 ms:
   peak RSS above the idle baseline.

Prints the figures and writes them to bench/out/ingest.json. Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import cv2
import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deploy.sandbox import reset  # noqa: E402
from deploy.services import ServiceProcess, stop_running  # noqa: E402
from shared import endpoints  # noqa: E402

ADMIN_KEY = "cvk_bench_admin"
DATABASE = "conveyor_bench"
GIB = 1024**3


def make_jpegs(count: int, seed: int = 7) -> list[bytes]:
    """Photo-like 640x480 JPEGs (gradients, shapes, mild noise), all different."""
    rng = np.random.default_rng(seed)
    base_x = np.linspace(0, 255, 640, dtype=np.float32)[None, :, None]
    base_y = np.linspace(0, 255, 480, dtype=np.float32)[:, None, None]
    images = []
    for _ in range(count):
        tint = rng.uniform(0.3, 1.0, size=3).astype(np.float32)
        img = ((base_x * tint + base_y * tint[::-1]) / 2).repeat(1, axis=2)
        img = np.broadcast_to(img, (480, 640, 3)).copy()
        for _ in range(6):
            center = (int(rng.integers(0, 640)), int(rng.integers(0, 480)))
            color = tuple(int(c) for c in rng.integers(0, 256, 3))
            cv2.circle(img, center, int(rng.integers(10, 120)), color, -1)
        img += rng.normal(0, 6, img.shape).astype(np.float32)
        ok, encoded = cv2.imencode(".jpg", np.clip(img, 0, 255).astype(np.uint8))
        assert ok
        images.append(encoded.tobytes())
    return images


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of values."""
    return float(np.percentile(values, q)) if values else float("nan")


async def upload_all(
    url: str,
    slug: str,
    images: list[bytes],
    concurrency: int,
    rate: float | None,
    per_request: int = 1,
) -> list[tuple[str, float, float]]:
    """Upload images, ``per_request`` to a request (``rate``: requests/s, None = flat out).

    Returns (asset id, send time (epoch s), request latency s) per image.
    """
    results: list[tuple[str, float, float]] = []
    queue: asyncio.Queue[tuple[int, list[bytes]]] = asyncio.Queue()
    for i, start in enumerate(range(0, len(images), per_request)):
        queue.put_nowait((i, images[start : start + per_request]))
    started = time.perf_counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url, headers={"X-API-Key": ADMIN_KEY}, timeout=60, limits=limits
    ) as client:

        async def worker() -> None:
            while not queue.empty():
                i, group = queue.get_nowait()
                if rate:
                    # paced: request i leaves at started + i / rate
                    delay = started + i / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                sent = time.time()
                t0 = time.perf_counter()
                files = [("files", (f"{i}-{j}.jpg", image)) for j, image in enumerate(group)]
                response = await client.post(f"/v1/datasets/{slug}/assets", files=files)
                latency = time.perf_counter() - t0
                response.raise_for_status()
                items = response.json()["items"]
                results.extend((item["id"], sent, latency) for item in items)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def audit_times(
    audit_url: str,
    asset_ids: set[str],
    types: tuple[str, ...] = ("conveyor.asset.ingested.v1",),
    timeout: float = 120,
    api_key: str = ADMIN_KEY,
) -> dict[str, float]:
    """recorded_at (epoch s) of each asset's audit record of these types, waiting for all."""
    deadline = time.monotonic() + timeout
    found: dict[str, float] = {}
    with httpx.Client(base_url=audit_url, headers={"X-API-Key": api_key}, timeout=120) as c:
        while time.monotonic() < deadline:
            for kind in types:
                response = c.get("/v1/audit/export", params={"type": kind})
                for line in response.text.splitlines():
                    record = json.loads(line)
                    if record["subject"] in asset_ids:
                        found[record["subject"]] = datetime.fromisoformat(
                            record["recorded_at"]
                        ).timestamp()
            if len(found) == len(asset_ids):
                break
            time.sleep(1)
    return found


def big_upload_rss(url: str, slug: str, size: int) -> dict[str, float]:
    """Stream one ``size``-byte file and sample the ingest process's RSS meanwhile."""
    pid = int((ROOT / ".stack" / "bench" / "ingest.pid").read_text())
    proc = psutil.Process(pid)

    def rss() -> int:
        # with several workers, the uvicorn supervisor's children serve the requests
        total = 0
        for p in [proc, *proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    baseline = rss()
    peak = baseline
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss())
            time.sleep(0.02)

    with tempfile.NamedTemporaryFile(suffix=".jpg") as tmp:
        chunk = os.urandom(1024 * 1024)
        tmp.write(b"\xff\xd8\xff\xe0")
        written = 4
        while written < size:
            part = chunk[: size - written]
            tmp.write(part)
            written += len(part)
        tmp.flush()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.perf_counter()
        with open(tmp.name, "rb") as f:
            response = httpx.post(
                f"{url}/v1/datasets/{slug}/assets",
                headers={"X-API-Key": ADMIN_KEY},
                files=[("files", ("big.jpg", f))],
                timeout=600,
            )
        elapsed = time.perf_counter() - t0
        stop.set()
        sampler.join()
    response.raise_for_status()
    return {
        "size_mib": size / 2**20,
        "seconds": elapsed,
        "mib_per_s": size / 2**20 / elapsed,
        "baseline_rss_mib": baseline / 2**20,
        "peak_rss_mib": peak / 2**20,
        "extra_rss_mib": (peak - baseline) / 2**20,
    }


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="images in the saturated phase")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--paced", type=int, default=1000, help="images in the 50/s phase")
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--big-mib", type=int, default=1024, help="size of the big upload")
    parser.add_argument("--workers", type=int, default=1, help="ingest worker processes")
    args = parser.parse_args()

    stop_running(("ingest", "clean", "audit"), say=True)
    print("resetting database, topics and landing bucket...", flush=True)
    reset(DATABASE)
    run_dir = ROOT / ".stack" / "bench"
    env = {
        "CONVEYOR_DATABASE_URL": endpoints.postgres_url(DATABASE, driver="asyncpg"),
        "CONVEYOR_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "CONVEYOR_INGEST_MAX_UPLOAD_BYTES": str(2 * GIB),
        "CONVEYOR_LOG_LEVEL": "WARNING",
        "CONVEYOR_INGEST_WORKERS": str(args.workers),
        "CONVEYOR_INGEST_CONSUMER_GROUP": f"bench-ingest-{int(time.time())}",
        "CONVEYOR_AUDIT_CONSUMER_GROUP": f"bench-audit-{int(time.time())}",
    }
    procs = [
        ServiceProcess(n, env=env, log_dir=run_dir, run_dir=run_dir) for n in ("ingest", "audit")
    ]
    for proc in procs:
        proc.start()
    ingest_url, audit_url = procs[0].url, procs[1].url
    try:
        admin = httpx.Client(base_url=ingest_url, headers={"X-API-Key": ADMIN_KEY}, timeout=30)
        admin.post("/v1/datasets", json={"slug": "bench", "name": "Benchmark"}).raise_for_status()

        print(f"generating {args.count + args.paced} 640x480 JPEGs...", flush=True)
        images = make_jpegs(args.count + args.paced)
        mean_kib = statistics.mean(len(i) for i in images) / 1024

        print(f"phase 1: {args.count} uploads, {args.concurrency} concurrent clients", flush=True)
        t0 = time.perf_counter()
        saturated = asyncio.run(
            upload_all(ingest_url, "bench", images[: args.count], args.concurrency, None)
        )
        wall = time.perf_counter() - t0
        latencies = [lat for _, _, lat in saturated]
        recorded = audit_times(audit_url, {a for a, _, _ in saturated})
        to_audit_sat = [recorded[a] - sent for a, sent, _ in saturated if a in recorded]

        print(f"phase 2: {args.paced} uploads at {args.rate:.0f}/s", flush=True)
        paced = asyncio.run(
            upload_all(ingest_url, "bench", images[args.count :], args.concurrency, args.rate)
        )
        recorded_paced = audit_times(audit_url, {a for a, _, _ in paced})
        to_audit = [recorded_paced[a] - sent for a, sent, _ in paced if a in recorded_paced]

        print(f"phase 3: one {args.big_mib} MiB streamed upload", flush=True)
        big = big_upload_rss(ingest_url, "bench", args.big_mib * 2**20)
    finally:
        for proc in procs:
            proc.stop()

    figures = {
        "cpu_count": os.cpu_count(),
        "ingest_workers": args.workers,
        "image_mean_kib": round(mean_kib, 1),
        "saturated": {
            "uploads": len(saturated),
            "concurrency": args.concurrency,
            "wall_s": round(wall, 2),
            "uploads_per_s": round(len(saturated) / wall, 1),
            "latency_p50_ms": round(pct(latencies, 50) * 1000, 1),
            "latency_p95_ms": round(pct(latencies, 95) * 1000, 1),
            "upload_to_audit_p50_ms": round(pct(to_audit_sat, 50) * 1000, 1),
            "upload_to_audit_p95_ms": round(pct(to_audit_sat, 95) * 1000, 1),
            "audited": len(to_audit_sat),
        },
        "paced": {
            "uploads": len(paced),
            "rate_per_s": args.rate,
            "upload_to_audit_p50_ms": round(pct(to_audit, 50) * 1000, 1),
            "upload_to_audit_p95_ms": round(pct(to_audit, 95) * 1000, 1),
            "audited": len(to_audit),
        },
        "big_upload": {k: round(v, 1) for k, v in big.items()},
    }
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "ingest.json").write_text(json.dumps(figures, indent=2))

    s, p, b = figures["saturated"], figures["paced"], figures["big_upload"]
    print()
    print(
        f"Conveyor ingest benchmark ({figures['cpu_count']} cores, whole stack on this machine,"
        f" {args.workers} ingest worker(s))"
    )
    print(f"  images: 640x480 JPEG, mean {figures['image_mean_kib']} KiB")
    print(f"  saturated: {s['uploads']} uploads, {s['concurrency']} clients, {s['wall_s']} s")
    print(f"    uploads/s                 {s['uploads_per_s']:>8}   (target >= 150)")
    print(f"    upload latency p50 / p95  {s['latency_p50_ms']:>8} / {s['latency_p95_ms']} ms")
    print(
        f"    upload->audit p50 / p95   {s['upload_to_audit_p50_ms']:>8} / "
        f"{s['upload_to_audit_p95_ms']} ms"
    )
    print(f"  paced at {p['rate_per_s']:.0f}/s: {p['uploads']} uploads")
    print(
        f"    upload->audit p50 / p95   {p['upload_to_audit_p50_ms']:>8} / "
        f"{p['upload_to_audit_p95_ms']} ms   (target p95 < 500)"
    )
    print(f"  {b['size_mib']:.0f} MiB streamed upload: {b['seconds']} s ({b['mib_per_s']} MiB/s)")
    print(f"    ingest RSS baseline/peak  {b['baseline_rss_mib']:>8} / {b['peak_rss_mib']} MiB")
    print(f"    extra RSS                 {b['extra_rss_mib']:>8} MiB   (target < 100)")


if __name__ == "__main__":
    main()
