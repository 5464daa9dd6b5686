"""Throughput: Conveyor end to end, from uploads to verdicts, and what it costs in CPU.

A fresh database ``conveyor_bench_clean`` and topics, ingest + clean + audit started here, the
640x480 JPEGs uploaded by 16 concurrent clients (8 files per request, ``--files-per-request``,
as a bulk loader would send them); assets/s from the first upload to the last verdict
(``updated_at`` of each report read from the clean API), and the clean process's CPU time per
image (psutil, the clean process and its children, before the first upload and after the last
verdict), next to the in-process CPU cost of ``analyze_image`` and of a bare ``cv2.imdecode`` of
the same files, and next to cleanvision's and imagededup's wall time on the same files; the CPU
every process of the stack spent per asset meanwhile. The last 300 JPEGs (``--paced``) then go
up one per request at a steady 20/s (``--rate``): p50/p95 from each upload to its verdict.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import cv2
import httpx
import numpy as np
import psutil

from bench.ingest import audit_times, upload_all
from deploy.sandbox import reset
from deploy.services import ServiceProcess, stop_running
from services.clean.checks import analyze_image
from shared.endpoints import postgres_url

from .stack import ADMIN_KEY, DATABASE, PG, ROOT
from .stats import pct


def in_process_costs(paths: list[Path]) -> dict[str, float]:
    """CPU per image of a bare cv2.imdecode and of analyze_image, here in one thread.

    OpenCV's own thread pool is off, as in the clean service (which runs files side by side
    instead): its hand-offs cost CPU time of their own.
    """
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        return _in_process_costs(paths)
    finally:
        cv2.setNumThreads(threads)


def _in_process_costs(paths: list[Path]) -> dict[str, float]:
    blobs = [p.read_bytes() for p in paths]
    for data in blobs[:20]:  # warm up OpenCV's and NumPy's first-call costs
        analyze_image(data)
    started, wall = time.process_time(), time.perf_counter()
    for data in blobs:
        cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    decode_cpu, decode_wall = time.process_time() - started, time.perf_counter() - wall
    started, wall = time.process_time(), time.perf_counter()
    for data in blobs:
        analyze_image(data)
    analyze_cpu, analyze_wall = time.process_time() - started, time.perf_counter() - wall
    n = len(blobs)
    return {
        "images": n,
        "mean_kib": statistics.mean(len(b) for b in blobs) / 1024,
        "imdecode_cpu_ms": decode_cpu / n * 1000,
        "imdecode_wall_s": decode_wall,
        "analyze_cpu_ms": analyze_cpu / n * 1000,
        "analyze_wall_s": analyze_wall,
    }


STACK_ROLES = (
    ("ingest", "services.ingest"),
    ("clean", "services.clean"),
    ("audit", "services.audit"),
    ("kafka", "kafka.Kafka"),
    ("seaweedfs", "weed"),
    ("postgres", "postgres"),
)


SERVICE_ROLES = frozenset({"ingest", "clean", "audit"})
# a Postgres backend's title: "postgres: <user> <database> <client address> <state>"
BACKEND = re.compile(r"^postgres: \S+ (\S+) (\S+\(\d+\)|\[local\])")
ELSEWHERE = "other services"


def stack_cpu(own: Collection[int] | None = None) -> dict[int, tuple[str, float]]:
    """CPU seconds so far of every process of the stack, by pid: (role, seconds).

    With ``own`` (the pids of the services this benchmark started), copies of the services
    that others run on a shared machine, and Postgres backends of other databases, count as
    ``other services`` instead of the stack. Kafka, SeaweedFS and Postgres's own background
    processes serve every client at once and are counted whole.
    """
    found: dict[int, tuple[str, float]] = {}
    for process in psutil.process_iter(["cmdline", "name"]):
        line = " ".join(process.info["cmdline"] or [process.info["name"] or ""])
        role = next((r for r, marker in STACK_ROLES if marker in line), None)
        if role is None:
            continue
        backend = BACKEND.match(line)
        if own is not None and (
            (role in SERVICE_ROLES and process.pid not in own)
            or (role == "postgres" and backend and backend.group(1) != DATABASE)
        ):
            role = ELSEWHERE
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            found[process.pid] = (role, times.user + times.system)
    return found


def cpu_by_role(
    before: dict[int, tuple[str, float]], own: Collection[int] | None = None
) -> dict[str, float]:
    """CPU seconds per role since ``before`` (processes started since count from zero; ones
    that ended since are lost, e.g. short Postgres backends)."""
    spent: defaultdict[str, float] = defaultdict(float)
    for pid, (role, seconds) in stack_cpu(own).items():
        spent[role] += seconds - (before[pid][1] if pid in before else 0.0)
    return dict(spent)


def own_pids(procs: Collection[ServiceProcess]) -> set[int]:
    """The pids of the services started here, and of their children."""
    pids: set[int] = set()
    for proc in procs:
        if proc.process is None:
            continue
        with contextlib.suppress(psutil.Error):
            parent = psutil.Process(proc.process.pid)
            pids |= {parent.pid, *(c.pid for c in parent.children(recursive=True))}
    return pids


def machine_busy() -> float:
    """CPU seconds every core of the machine has spent busy so far (any process)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU of a process and its children."""
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = p.cpu_times()
            total += times.user + times.system
    return total


async def reports_done(expected: int, timeout: float) -> int:
    """Wait until clean has stored ``expected`` reports (polling Postgres, not the service).

    Frames sampled from a video come back as image assets of their own, so a run with videos
    expects their reports too.
    """
    deadline = time.monotonic() + timeout
    conn = await asyncpg.connect(PG)
    try:
        count = 0
        while time.monotonic() < deadline:
            count = int(await conn.fetchval("SELECT count(*) FROM clean.quality_reports"))
            if count >= expected:
                break
            await asyncio.sleep(0.2)
        return count
    finally:
        await conn.close()


async def fetch_reports(url: str, ids: list[str], concurrency: int = 16) -> dict[str, Any]:
    """Each asset's quality report from the clean API."""
    reports: dict[str, Any] = {}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url, headers={"X-API-Key": ADMIN_KEY}, timeout=60, limits=limits
    ) as client:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(ident: str) -> None:
            async with semaphore:
                response = await client.get(f"/v1/assets/{ident}/quality")
            if response.status_code == 200:
                reports[ident] = response.json()

        await asyncio.gather(*(one(i) for i in ids))
    return reports


def audit_verdict_times(audit_url: str, ids: set[str], timeout: float = 60) -> dict[str, float]:
    """recorded_at (epoch s) of each asset's clean verdict in the audit log."""
    verdicts = ("conveyor.asset.cleaned.v1", "conveyor.asset.rejected.v1")
    return audit_times(audit_url, ids, verdicts, timeout, ADMIN_KEY)


def paced_latency(
    ingest: str, clean: str, paths: list[Path], rate: float, stored: int
) -> dict[str, Any]:
    """Upload ``paths`` one per request at a steady ``rate``; upload->verdict latency.

    ``stored`` is how many reports the database holds before (so the wait knows when all of
    these are judged).
    """
    images = [p.read_bytes() for p in paths]
    print(f"  uploading {len(images)} JPEGs at a steady {rate:.0f}/s...", flush=True)
    sent = upload_all(ingest, "bench", images, 8, rate)
    asyncio.run(reports_done(stored + len(images), 120))
    reports = asyncio.run(fetch_reports(clean, [a for a, _, _ in sent]))
    latencies = [
        datetime.fromisoformat(reports[a]["updated_at"]).timestamp() - at
        for a, at, _ in sent
        if a in reports
    ]
    return {
        "uploads": len(images),
        "rate_per_s": rate,
        "verdicts": len(latencies),
        "upload_to_verdict_p50_ms": pct(latencies, 50) * 1000,
        "upload_to_verdict_p95_ms": pct(latencies, 95) * 1000,
        "upload_to_verdict_max_ms": max(latencies) * 1000 if latencies else None,
    }


def end_to_end(
    paths: list[Path],
    warmup: Path,
    concurrency: int,
    per_request: int,
    paced: list[Path],
    rate: float,
    derived: int = 0,
) -> dict[str, Any]:
    """Upload the files through ingest; assets/s to the clean verdict and clean's CPU/image,
    then ``paced`` at a steady ``rate``: how soon a verdict follows an upload.

    ``derived``: reports clean stores beyond the uploads (frames it samples from the videos,
    which ingest registers as image assets); CPU is read once those are judged too, so their
    cost counts towards their video's.
    """
    stop_running(("ingest", "clean", "audit"), say=True)
    print("  resetting database, topics and landing bucket...", flush=True)
    reset(DATABASE)
    run_dir = ROOT / ".stack" / "bench-clean"
    stamp = int(time.time())
    env = {
        "CONVEYOR_DATABASE_URL": postgres_url(DATABASE, driver="asyncpg"),
        "CONVEYOR_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
        "CONVEYOR_LOG_LEVEL": "WARNING",
        "CONVEYOR_INGEST_CONSUMER_GROUP": f"bench-ingest-{stamp}",
        "CONVEYOR_CLEAN_CONSUMER_GROUP": f"bench-clean-{stamp}",
        "CONVEYOR_AUDIT_CONSUMER_GROUP": f"bench-audit-{stamp}",
    }
    procs = {
        n: ServiceProcess(n, env=env, log_dir=run_dir, run_dir=run_dir)
        for n in ("ingest", "clean", "audit")
    }
    try:
        for proc in procs.values():
            proc.start()
        ingest, clean, audit = (procs[n].url for n in ("ingest", "clean", "audit"))
        with httpx.Client(base_url=ingest, headers={"X-API-Key": ADMIN_KEY}, timeout=30) as c:
            c.post("/v1/datasets", json={"slug": "bench", "name": "Clean bench"}).raise_for_status()
        # one warm-up asset through the whole path, so consumer-group joins are not timed
        upload_all(ingest, "bench", [warmup.read_bytes()], 1, None)
        if asyncio.run(reports_done(1, 120)) < 1:
            raise RuntimeError(f"no verdict for the warm-up asset:\n{procs['clean'].log_tail()}")
        blobs = [p.read_bytes() for p in paths]
        assert procs["clean"].process is not None
        clean_process = psutil.Process(procs["clean"].process.pid)
        megabytes = sum(len(b) for b in blobs) / 1e6
        print(
            f"  uploading {len(blobs)} files ({megabytes:.0f} MB) with {concurrency} clients, "
            f"{per_request} per request...",
            flush=True,
        )
        cpu_before = cpu_seconds(clean_process)
        own = own_pids(procs.values())
        stack_before, busy_before = stack_cpu(own), machine_busy()
        client_before = time.process_time()
        first = time.time()
        sent_at = upload_all(ingest, "bench", blobs, concurrency, None, per_request)
        uploaded = [(asset, at) for asset, at, _ in sent_at]
        upload_wall = time.time() - first
        done = asyncio.run(reports_done(len(blobs) + 1 + derived, 900))
        cpu_after = cpu_seconds(clean_process)
        spent_by_role = cpu_by_role(stack_before, own)
        elsewhere = spent_by_role.pop(ELSEWHERE, 0.0)
        stack_spent = spent_by_role
        busy = machine_busy() - busy_before
        client = time.process_time() - client_before
        waited = time.time() - first
        reports = asyncio.run(fetch_reports(clean, [a for a, _ in uploaded]))
        audited = audit_verdict_times(audit, {a for a, _ in uploaded})
        steady = paced_latency(ingest, clean, paced, rate, done) if paced else None
    finally:
        for proc in procs.values():
            proc.stop()
    sent = dict(uploaded)
    verdict_at = {
        a: datetime.fromisoformat(r["updated_at"]).timestamp() for a, r in reports.items()
    }
    last = max(verdict_at.values()) if verdict_at else float("nan")
    latencies = [verdict_at[a] - sent[a] for a in verdict_at]
    to_audit = [audited[a] - sent[a] for a in audited]
    statuses = Counter(r["status"] for r in reports.values())
    reasons = Counter(x["code"] for r in reports.values() for x in r["reasons"])
    flags = Counter(x["code"] for r in reports.values() for x in r["flags"])
    n = len(blobs)
    rest = busy - sum(stack_spent.values()) - client - elsewhere
    return {
        "uploads": n,
        "megabytes": megabytes,
        "derived_expected": derived,
        "concurrency": concurrency,
        "files_per_request": per_request,
        "upload_wall_s": upload_wall,
        "uploads_per_s": n / upload_wall,
        "verdicts": len(verdict_at),
        "reports_seen_in_db": done - 1,
        "first_upload_to_last_verdict_s": last - first,
        "assets_per_s": len(verdict_at) / (last - first) if verdict_at else None,
        # every upload's bytes over the same span (the verdicts count says if any is missing)
        "mb_per_s": megabytes / (last - first) if verdict_at else None,
        "upload_to_verdict_p50_ms": pct(latencies, 50) * 1000,
        "upload_to_verdict_p95_ms": pct(latencies, 95) * 1000,
        "upload_to_audit_p50_ms": pct(to_audit, 50) * 1000,
        "upload_to_audit_p95_ms": pct(to_audit, 95) * 1000,
        "audited": len(audited),
        "wait_wall_s": waited,
        "clean_cpu_s": cpu_after - cpu_before,
        "clean_cpu_ms_per_image": (cpu_after - cpu_before) / n * 1000,
        "stack_cpu_ms_per_asset": {role: spent / n * 1000 for role, spent in stack_spent.items()},
        # copies of the services and Postgres backends of other databases: others' work
        "other_services_cpu_ms_per_asset": elsewhere / n * 1000,
        # this process (the uploading clients), and every other process on the machine
        # meanwhile (other work on a shared machine)
        "client_cpu_ms_per_asset": client / n * 1000,
        "other_cpu_ms_per_asset": rest / n * 1000,
        "steady": steady,
        "statuses": dict(statuses),
        "reasons": dict(reasons),
        "flags": dict(flags),
    }


def figures(
    local: dict[str, float],
    e2e: dict[str, Any],
    cleanvision: dict[str, Any],
    imagededup: dict[str, Any],
) -> dict[str, Any]:
    """The throughput figures: in-process costs, end to end, and the peers' wall time."""
    return {
        "in_process": local,
        "end_to_end": e2e,
        "cleanvision": {k: v for k, v in cleanvision.items() if k in ("na", "wall_s", "files")},
        "imagededup": {k: v for k, v in imagededup.items() if k in ("na", "wall_s", "files")},
    }
