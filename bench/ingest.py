"""Ingest benchmark: upload throughput, upload→audit latency, multipart cost, big-upload memory.

Runs its own ingest and audit processes against the local stack (fresh database
``conveyor_bench``, fresh topics), then:

1. uploads N generated 640x480 JPEGs (default 2,000), one file per request, with 16
   concurrent clients as fast as they go: uploads/s and p50/p95 upload latency. Peer, in the
   same run, just before and again just after the uploads: bare S3 puts of the same files
   through the minio SDK with 16 threads (what ingest's own store writes cost at best); the
   ratio uploads/s over the mean of the two puts/s is printed, the ingest processes' CPU
   milliseconds per upload, and the whole machine's CPU per upload and per bare put by
   process (ingest, audit, Postgres, Kafka, SeaweedFS, this client, other);
2. uploads M more at a steady 50 uploads/s: p50/p95 time from sending the upload to the
   audit record being written (the audit row's ``recorded_at``; one machine, one clock);
3. uploads 4 MiB files one per request (4 concurrent clients): MiB/s and the ingest
   process's CPU seconds per MiB, against a floor measured in this process: sha256 plus a
   minio put of the same bytes (same concurrency), its MiB/s and CPU seconds per MiB; and
   ingest's multipart handling alone (its own ``receive_upload`` run in this process on the
   same files: parse, sniff, hash, spool) against that floor;
4. streams a 1 GiB file in one request while sampling the ingest process's RSS every 20 ms:
   peak RSS above the idle baseline.

Prints the figures and writes them to bench/out/ingest.json. Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import cv2
import httpx
import numpy as np
import psutil
import urllib3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deploy.sandbox import minio_client, reset  # noqa: E402
from deploy.services import ServiceProcess, stop_running  # noqa: E402
from shared import endpoints  # noqa: E402

ADMIN_KEY = "cvk_bench_admin"
DATABASE = "conveyor_bench"
GIB = 1024**3
MIB = 1024**2
# The peer's bucket: bare puts land here, never in a bucket a service reads.
PEER_BUCKET = "conveyor-bench-peer"


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


def make_blobs(count: int, size: int) -> list[bytes]:
    """``count`` different files of ``size`` bytes that sniff as JPEG (random bytes after it)."""
    rng = np.random.default_rng(11)
    head = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
    return [head + rng.bytes(size - len(head)) for _ in range(count)]


def bare_puts(blobs: list[bytes], threads: int, *, hash_first: bool) -> dict[str, float]:
    """Put every blob to the peer bucket with the minio SDK from ``threads`` threads.

    ``hash_first``: compute each blob's sha256 before putting it (ingest's floor). Returns
    puts/s, MiB/s and this process's CPU seconds per MiB.
    """
    client = minio_client()
    if not client.bucket_exists(PEER_BUCKET):
        client.make_bucket(PEER_BUCKET)

    def put(item: tuple[int, bytes]) -> None:
        i, blob = item
        key = hashlib.sha256(blob).hexdigest() if hash_first else f"{i:08d}"
        client.put_object(PEER_BUCKET, key, io.BytesIO(blob), len(blob), "image/jpeg")

    cpu0, t0 = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, enumerate(blobs)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    mib = sum(len(b) for b in blobs) / MIB
    return {"puts_per_s": len(blobs) / wall, "mib_per_s": mib / wall, "cpu_s_per_mib": cpu / mib}


def empty_peer_bucket() -> None:
    """Delete what :func:`bare_puts` wrote (outside its CPU figures: deleting as many
    objects costs the store about as much as writing them)."""
    client = minio_client()
    keys = [o.object_name for o in client.list_objects(PEER_BUCKET, recursive=True)]
    for key in keys:
        if key:
            client.remove_object(PEER_BUCKET, key)


def ingest_cpu_seconds() -> Callable[[], float]:
    """A reader of the ingest processes' CPU seconds (user + system, workers included)."""
    proc = psutil.Process(int((ROOT / ".stack" / "bench" / "ingest.pid").read_text()))

    def read() -> float:
        total = 0.0
        for p in [proc, *proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = p.cpu_times()
                total += times.user + times.system
        return total

    return read


def multipart_cpu(blobs: list[bytes], chunk: int = 64 * 1024) -> dict[str, float]:
    """CPU seconds per MiB of ingest's own multipart handling, in this process: each blob as
    a one-file upload body, fed to ``receive_upload`` (the service's parser: part headers,
    type sniffing, size limit, SHA-256, spooling) in ``chunk``-byte messages, as uvicorn
    hands a body over. Compared with the floor, it answers "does handling the multipart body
    cost more CPU than hashing and storing the bytes?"."""
    from starlette.requests import Request

    from services.ingest.upload_stream import receive_upload

    boundary = b"conveyor-bench-boundary"

    def body_of(blob: bytes) -> bytes:
        head = (
            b"--" + boundary + b"\r\n"
            b'Content-Disposition: form-data; name="files"; filename="big.jpg"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n"
        )
        return head + blob + b"\r\n--" + boundary + b"--\r\n"

    async def parse(body: bytes) -> None:
        pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)]

        async def receive() -> dict[str, object]:
            piece = pieces.pop(0)
            return {"type": "http.request", "body": piece, "more_body": bool(pieces)}

        content_type = b"multipart/form-data; boundary=" + boundary
        scope = {"type": "http", "method": "POST", "headers": [(b"content-type", content_type)]}
        received = await receive_upload(Request(scope, receive), 2 * GIB)
        received.close()

    bodies = [body_of(blob) for blob in blobs]
    cpu0 = time.process_time()
    for body in bodies:
        asyncio.run(parse(body))
    cpu = time.process_time() - cpu0
    return {"cpu_s_per_mib": cpu / (sum(len(b) for b in blobs) / MIB)}


def stack_cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) so far of every process of the stack on this machine, by
    part: ingest and audit (with their workers), Postgres, Kafka, SeaweedFS, this benchmark
    (the HTTP client of both sides), and anything else running (other work on the machine)."""
    run_dir = ROOT / ".stack" / "bench"
    services = {}
    for name in ("ingest", "audit"):
        with contextlib.suppress(OSError, ValueError, psutil.Error):
            root = psutil.Process(int((run_dir / f"{name}.pid").read_text()))
            services.update({p.pid: name for p in [root, *root.children(recursive=True)]})
    parts: dict[str, float] = {}
    for proc in psutil.process_iter(["pid", "name", "cmdline", "cpu_times"]):
        times = proc.info["cpu_times"]
        if times is None:
            continue
        command = " ".join(proc.info["cmdline"] or [proc.info["name"] or ""])
        if proc.info["pid"] in services:
            part = services[proc.info["pid"]]
        elif proc.info["pid"] == os.getpid():
            part = "benchmark client"
        elif (proc.info["name"] or "").startswith("postgres"):
            part = "postgres"
        elif "kafka" in command and "java" in command:
            part = "kafka"
        elif "weed" in (proc.info["name"] or "") or "/weed " in command:
            part = "seaweedfs"
        else:
            part = "other"
        parts[part] = parts.get(part, 0.0) + times.user + times.system
    return parts


def cpu_per_item(before: dict[str, float], after: dict[str, float], items: int) -> dict[str, float]:
    """Milliseconds of CPU per item, by part (parts that started meanwhile count from zero)."""
    return {
        part: round((after[part] - before.get(part, 0.0)) * 1000 / items, 2)
        for part in sorted(after, key=lambda p: before.get(p, 0.0) - after[p])
        if after[part] > before.get(part, 0.0)
    }


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of values."""
    return float(np.percentile(values, q)) if values else float("nan")


def upload_all(
    url: str,
    slug: str,
    images: list[bytes],
    concurrency: int,
    rate: float | None,
    per_request: int = 1,
) -> list[tuple[str, float, float]]:
    """Upload images, ``per_request`` to a request (``rate``: requests/s, None = flat out).

    ``concurrency`` threads share one urllib3 pool: the HTTP stack the minio SDK of the peer
    uses, so both sides of the ratio pay the same client cost on this shared machine.
    Returns (asset id, send time (epoch s), request latency s) per image.
    """
    groups = [images[start : start + per_request] for start in range(0, len(images), per_request)]
    pool = urllib3.PoolManager(maxsize=concurrency, timeout=urllib3.Timeout(60), retries=False)
    target = f"{url}/v1/datasets/{slug}/assets"
    started = time.perf_counter()

    def send(item: tuple[int, list[bytes]]) -> list[tuple[str, float, float]]:
        i, group = item
        if rate:
            # paced: request i leaves at started + i / rate
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        fields = [
            ("files", (f"{i}-{j}.jpg", image, "application/octet-stream"))
            for j, image in enumerate(group)
        ]
        body, content_type = urllib3.encode_multipart_formdata(fields)
        sent = time.time()
        t0 = time.perf_counter()
        response = pool.request(
            "POST",
            target,
            body=body,
            headers={"X-API-Key": ADMIN_KEY, "Content-Type": content_type},
        )
        latency = time.perf_counter() - t0
        if response.status != 201:
            raise RuntimeError(f"upload {i}: HTTP {response.status} {response.data[:300]!r}")
        return [(item["id"], sent, latency) for item in response.json()["items"]]

    with ThreadPoolExecutor(concurrency) as threads:
        return [r for rs in threads.map(send, enumerate(groups)) for r in rs]


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


def at_least_one(text: str) -> int:
    """An argparse type: an integer of 1 or more."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--count", type=at_least_one, default=2000, help="images in the saturated phase"
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--paced", type=int, default=1000, help="images in the 50/s phase")
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument(
        "--large", type=at_least_one, default=48, help="4 MiB files in phase 3 (at least 1)"
    )
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

        print(f"peer: {args.count} bare S3 puts, {args.concurrency} threads", flush=True)
        stack0 = stack_cpu_seconds()
        peer_before = bare_puts(images[: args.count], args.concurrency, hash_first=False)
        peer_stack = cpu_per_item(stack0, stack_cpu_seconds(), args.count)
        empty_peer_bucket()

        print(f"phase 1: {args.count} uploads, {args.concurrency} concurrent clients", flush=True)
        cpu = ingest_cpu_seconds()
        cpu0, stack0, t0 = cpu(), stack_cpu_seconds(), time.perf_counter()
        saturated = upload_all(ingest_url, "bench", images[: args.count], args.concurrency, None)
        wall, saturated_cpu = time.perf_counter() - t0, cpu() - cpu0
        saturated_stack = cpu_per_item(stack0, stack_cpu_seconds(), args.count)
        latencies = [lat for _, _, lat in saturated]
        recorded = audit_times(audit_url, {a for a, _, _ in saturated})
        to_audit_sat = [recorded[a] - sent for a, sent, _ in saturated if a in recorded]
        # The machine's speed drifts within a run (a shared host): the peer runs on both
        # sides of phase 1 and the ratio takes the mean of the two rates.
        print(f"peer again: {args.count} bare S3 puts", flush=True)
        peer_after = bare_puts(images[: args.count], args.concurrency, hash_first=False)
        empty_peer_bucket()
        peer_rates = [peer_before["puts_per_s"], peer_after["puts_per_s"]]

        print(f"phase 2: {args.paced} uploads at {args.rate:.0f}/s", flush=True)
        paced = upload_all(ingest_url, "bench", images[args.count :], args.concurrency, args.rate)
        recorded_paced = audit_times(audit_url, {a for a, _, _ in paced})
        to_audit = [recorded_paced[a] - sent for a, sent, _ in paced if a in recorded_paced]

        print(f"phase 3: {args.large} uploads of 4 MiB, 4 clients; floor in-process", flush=True)
        blobs = make_blobs(args.large, 4 * MIB)
        floor = bare_puts(blobs, 4, hash_first=True)
        empty_peer_bucket()
        multipart = multipart_cpu(blobs)
        cpu0, t0 = cpu(), time.perf_counter()
        upload_all(ingest_url, "bench", blobs, 4, None)
        large_wall, large_cpu = time.perf_counter() - t0, cpu() - cpu0
        large_mib = args.large * 4

        print(f"phase 4: one {args.big_mib} MiB streamed upload", flush=True)
        big = big_upload_rss(ingest_url, "bench", args.big_mib * 2**20) if args.big_mib else {}
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
            "peer_s3_puts_per_s": round(statistics.mean(peer_rates), 1),
            "peer_s3_puts_per_s_before_after": [round(r, 1) for r in peer_rates],
            "ratio_to_peer": round(len(saturated) / wall / statistics.mean(peer_rates), 3),
            "ingest_cpu_ms_per_upload": round(saturated_cpu / len(saturated) * 1000, 2),
            "ingest_cpu_share": round(saturated_cpu / wall, 2),
            "latency_p50_ms": round(pct(latencies, 50) * 1000, 1),
            "latency_p95_ms": round(pct(latencies, 95) * 1000, 1),
            "upload_to_audit_p50_ms": round(pct(to_audit_sat, 50) * 1000, 1),
            "upload_to_audit_p95_ms": round(pct(to_audit_sat, 95) * 1000, 1),
            "audited": len(to_audit_sat),
            # the whole machine's CPU per upload while the uploads ran, and per bare put
            # (audit's work on the uploads' events partly runs after the last upload)
            "machine_cpu_ms_per_upload": saturated_stack,
            "machine_cpu_ms_per_peer_put": peer_stack,
        },
        "paced": {
            "uploads": len(paced),
            "rate_per_s": args.rate,
            "upload_to_audit_p50_ms": round(pct(to_audit, 50) * 1000, 1),
            "upload_to_audit_p95_ms": round(pct(to_audit, 95) * 1000, 1),
            "audited": len(to_audit),
        },
        "large_files": {
            "files": args.large,
            "file_mib": 4,
            "mib_per_s": round(large_mib / large_wall, 1),
            "cpu_s_per_mib": round(large_cpu / large_mib, 4),
            "floor_mib_per_s": round(floor["mib_per_s"], 1),
            "floor_cpu_s_per_mib": round(floor["cpu_s_per_mib"], 4),
            "speed_ratio_to_floor": round(large_mib / large_wall / floor["mib_per_s"], 3),
            "cpu_ratio_to_floor": round(large_cpu / large_mib / floor["cpu_s_per_mib"], 3),
            # ingest's multipart handling alone (in-process, the service's own parser)
            "multipart_cpu_s_per_mib": round(multipart["cpu_s_per_mib"], 4),
            "multipart_ratio_to_floor": round(
                multipart["cpu_s_per_mib"] / floor["cpu_s_per_mib"], 3
            ),
        },
        "big_upload": {k: round(v, 1) for k, v in big.items()},
    }
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "ingest.json").write_text(json.dumps(figures, indent=2))

    s, p, b = figures["saturated"], figures["paced"], figures["big_upload"]
    lf = figures["large_files"]
    print()
    print(
        f"Conveyor ingest benchmark ({figures['cpu_count']} cores, whole stack on this machine,"
        f" {args.workers} ingest worker(s))"
    )
    print(f"  images: 640x480 JPEG, mean {figures['image_mean_kib']} KiB")
    print(f"  saturated: {s['uploads']} uploads, {s['concurrency']} clients, {s['wall_s']} s")
    print(f"    uploads/s                 {s['uploads_per_s']:>8}")
    before, after = s["peer_s3_puts_per_s_before_after"]
    print(
        f"    peer: bare S3 puts/s      {s['peer_s3_puts_per_s']:>8}   (minio SDK, same files; "
        f"mean of {before} before and {after} after the uploads)"
    )
    print(f"    ratio uploads / puts      {s['ratio_to_peer']:>8}   (target >= 0.3)")
    print(
        f"    ingest CPU per upload     {s['ingest_cpu_ms_per_upload']:>8} ms"
        f"   ({s['ingest_cpu_share']} cores busy)"
    )
    print(f"    upload latency p50 / p95  {s['latency_p50_ms']:>8} / {s['latency_p95_ms']} ms")
    print(
        f"    upload->audit p50 / p95   {s['upload_to_audit_p50_ms']:>8} / "
        f"{s['upload_to_audit_p95_ms']} ms"
    )
    print("    machine CPU ms per upload (per bare put), by process:")
    peer_parts = s["machine_cpu_ms_per_peer_put"]
    for part, ms in s["machine_cpu_ms_per_upload"].items():
        print(f"      {part:<22}{ms:>8}   ({peer_parts.get(part, 0.0)})")
    print(
        f"      {'total':<22}{sum(s['machine_cpu_ms_per_upload'].values()):>8.2f}"
        f"   ({sum(peer_parts.values()):.2f})"
    )
    print(f"  paced at {p['rate_per_s']:.0f}/s: {p['uploads']} uploads")
    print(
        f"    upload->audit p50 / p95   {p['upload_to_audit_p50_ms']:>8} / "
        f"{p['upload_to_audit_p95_ms']} ms   (target p95 < 500)"
    )
    print(f"  4 MiB files, one per request, 4 clients: {lf['files']} files")
    print(
        f"    MiB/s ingest / floor      {lf['mib_per_s']:>8} / {lf['floor_mib_per_s']}"
        f"   ratio {lf['speed_ratio_to_floor']}   (floor: sha256 + minio put in-process)"
    )
    print(
        f"    CPU s/MiB ingest / floor  {lf['cpu_s_per_mib']:>8} / {lf['floor_cpu_s_per_mib']}"
        f"   ratio {lf['cpu_ratio_to_floor']}   (the whole request)"
    )
    print(
        f"    multipart handling / floor{lf['multipart_cpu_s_per_mib']:>8} / "
        f"{lf['floor_cpu_s_per_mib']}   ratio {lf['multipart_ratio_to_floor']}"
        "   (target <= 1; parse, sniff, hash, spool)"
    )
    if not b:
        return
    print(f"  {b['size_mib']:.0f} MiB streamed upload: {b['seconds']} s ({b['mib_per_s']} MiB/s)")
    print(f"    ingest RSS baseline/peak  {b['baseline_rss_mib']:>8} / {b['peak_rss_mib']} MiB")
    print(f"    extra RSS                 {b['extra_rss_mib']:>8} MiB   (target < 100)")


if __name__ == "__main__":
    main()
