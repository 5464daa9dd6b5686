"""Labeling-dispatch benchmark: signed vendor webhooks accepted per second, and their latency.

Runs ingest, clean, labeling-dispatch and audit against the local stack (fresh database
``conveyor_bench_webhooks``, fresh consumer groups) and a webhook vendor on 127.0.0.1 that
acknowledges every delivery and keeps its task ids. Tasks are made the way production makes
them: a dataset, an ontology, the vendor and a job (overlap 10) through the APIs, then N/10
generated JPEGs uploaded, cleaned and dispatched by the service itself.

Then every task gets its own signed webhook (one bbox annotation, its own delivery id), fired
by several concurrent keep-alive connections; the bodies are built and signed beforehand so
the client spends its CPU on the exchange only (it shares this machine with the stack). The
in-run peer is the same service's ``/healthz`` fired the same number of times by the same
client: a request that does nothing, so the ratio says what the webhook's work costs.

``--workers 1 2`` repeats the run with ``CONVEYOR_LABELING_WORKERS`` set to each. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import ADMIN_KEY, fresh_services  # noqa: E402
from bench.ingest import make_jpegs, pct, upload_all  # noqa: E402
from services.labeling_dispatch.domain.signatures import (  # noqa: E402
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    sign,
)
from shared import endpoints  # noqa: E402

DATABASE = "conveyor_bench_webhooks"
OVERLAP = 10
SERVICES = ("ingest", "clean", "labeling", "audit")


class _Vendor(BaseHTTPRequestHandler):
    """A vendor that acknowledges every delivery at once and keeps its task ids."""

    task_ids: set[str] = set()
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        with self.lock:
            self.task_ids.update(t["task_id"] for t in body["tasks"])
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        return


def set_up(ingest_url: str, labeling_url: str, vendor_url: str) -> dict[str, Any]:
    """Dataset, ontology, vendor and job through the APIs; the vendor's id and secret."""
    with httpx.Client(headers={"X-API-Key": ADMIN_KEY}, timeout=30) as c:
        c.post(f"{ingest_url}/v1/datasets", json={"slug": "bench", "name": "Bench"})
        c.post(
            f"{labeling_url}/v1/ontologies",
            json={"name": "bench", "classes": [{"name": "car", "shape": "bbox"}]},
        ).raise_for_status()
        vendor = c.post(
            f"{labeling_url}/v1/vendors",
            json={
                "name": "bench-vendor",
                "kind": "webhook",
                "url": vendor_url,
                "capacity": 1_000_000,
                "batch_size": 100,
            },
        )
        vendor.raise_for_status()
        created: dict[str, Any] = vendor.json()
        c.post(
            f"{labeling_url}/v1/jobs",
            json={
                "name": "bench",
                "dataset": "bench",
                "ontology": "bench",
                "vendor_ids": [created["id"]],
                "overlap": OVERLAP,
                "priority": "arrival",
            },
        ).raise_for_status()
    return created


def open_task_count(labeling_url: str, api_key: str) -> int:
    """How many tasks the vendor holds, read through its own view."""
    total, cursor = 0, None
    with httpx.Client(headers={"X-Vendor-Key": api_key}, timeout=30) as c:
        while True:
            params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            page = c.get(f"{labeling_url}/v1/vendor/tasks", params=params).json()
            total += len(page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                return total


def webhook_requests(url: str, vendor_id: str, secret: str, task_ids: Sequence[str]) -> list[bytes]:
    """One signed HTTP/1.1 request per task, ready to write to a socket."""
    parts = urlsplit(url)
    path = f"/v1/vendors/{vendor_id}/webhook"
    now = int(time.time())
    requests = []
    for n, task_id in enumerate(task_ids):
        shape = {
            "class": "car",
            "type": "bbox",
            "bbox": {"x": 10 + n % 50, "y": 20, "width": 100, "height": 50},
        }
        body = json.dumps(
            {"annotations": [{"task_id": task_id, "annotator_id": f"a-{n % 7}", "shapes": [shape]}]}
        ).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"{SIGNATURE_HEADER}: {sign(secret, body, now)}\r\n"
            f"{DELIVERY_HEADER}: bench-{uuid.uuid4()}\r\n\r\n"
        )
        requests.append(head.encode() + body)
    return requests


def healthz_requests(url: str, count: int) -> list[bytes]:
    head = f"GET /healthz HTTP/1.1\r\nHost: {urlsplit(url).netloc}\r\n\r\n"
    return [head.encode()] * count


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    """One request on a keep-alive connection: the status and body of its answer."""
    writer.write(request)
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def fire(url: str, requests: list[bytes], clients: int) -> dict[str, Any]:
    """Send ``requests`` over ``clients`` connections; rate, latency, answers by status."""
    parts = urlsplit(url)
    queue = list(reversed(requests))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    bodies: list[bytes] = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while queue:
                request = queue.pop()
                started = time.perf_counter()
                status, body = await _exchange(reader, writer, request)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
                if status != 200:
                    bodies.append(body)
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "requests": len(requests),
        "per_s": round(len(requests) / elapsed, 1),
        "p50_ms": round(pct(latencies, 50) * 1000, 2),
        "p95_ms": round(pct(latencies, 95) * 1000, 2),
        "p99_ms": round(pct(latencies, 99) * 1000, 2),
        "statuses": statuses,
        "sample_errors": [b.decode(errors="replace")[:300] for b in bodies[:3]],
    }


def run(workers: int, tasks: int, clients: int) -> dict[str, Any]:
    """One full run with ``workers`` labeling-dispatch processes; its figures."""
    print(f"[workers={workers}]", flush=True)
    procs = fresh_services(
        SERVICES, DATABASE, "webhooks", {"CONVEYOR_LABELING_WORKERS": str(workers)}
    )
    _Vendor.task_ids = set()
    server = ThreadingHTTPServer((endpoints.HOST, 0), _Vendor)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    vendor_url = f"http://{endpoints.HOST}:{server.server_address[1]}/deliveries"
    for proc in procs.values():
        proc.start()
    try:
        labeling_url = procs["labeling"].url
        vendor = set_up(procs["ingest"].url, labeling_url, vendor_url)
        images = make_jpegs(tasks // OVERLAP, seed=5)
        print(f"[workers={workers}] uploading {len(images)} images...", flush=True)
        upload_all(procs["ingest"].url, "bench", images, 8, 100.0)
        key = vendor["api_key"]
        # every image clean accepts becomes OVERLAP tasks; one it rejects (a generated image
        # can read as a near duplicate of another) becomes none: wait until the count settles
        deadline = time.monotonic() + 180
        settled_since, last = time.monotonic(), -1
        while time.monotonic() < deadline:
            sent = len(_Vendor.task_ids)
            if sent != last:
                settled_since, last = time.monotonic(), sent
            full = sent >= len(images) * OVERLAP
            quiet = sent > 0 and time.monotonic() - settled_since > 5
            if (full or quiet) and open_task_count(labeling_url, key) >= sent:
                break
            time.sleep(0.5)
        task_ids = sorted(_Vendor.task_ids)
        print(f"[workers={workers}] {len(task_ids)} tasks dispatched; firing...", flush=True)
        requests = webhook_requests(labeling_url, vendor["id"], vendor["secret"], task_ids)
        webhooks = asyncio.run(fire(labeling_url, requests, clients))
        healthz = asyncio.run(
            fire(labeling_url, healthz_requests(labeling_url, len(requests)), clients)
        )
        left = open_task_count(labeling_url, vendor["api_key"])
    finally:
        for proc in procs.values():
            proc.stop()
        server.shutdown()
    return {"workers": workers, "clients": clients, "webhooks": webhooks, "healthz": healthz,
            "tasks_left_open": left}  # fmt: skip


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=3000, help="webhooks (one task each)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent connections")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    runs = [run(w, args.tasks, args.clients) for w in args.workers]
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "labeling_webhooks.json").write_text(
        json.dumps({"cpu_count": os.cpu_count(), "runs": runs}, indent=2)
    )
    print()
    print(f"Conveyor signed vendor webhooks ({os.cpu_count()} cores, whole stack running)")
    for r in runs:
        w, h = r["webhooks"], r["healthz"]
        accepted = w["statuses"].get(200, 0)
        print(f"  workers={r['workers']}, {r['clients']} connections, {w['requests']} webhooks:")
        print(
            f"    accepted {accepted}/{w['requests']} at {w['per_s']}/s   (target >= 500/s)"
            f"   p50 / p95 / p99 {w['p50_ms']} / {w['p95_ms']} / {w['p99_ms']} ms"
        )
        print(
            f"    peer /healthz: {h['per_s']}/s, p95 {h['p95_ms']} ms"
            f"   (webhooks / healthz rate {w['per_s'] / h['per_s']:.2f})"
        )
        if w["sample_errors"]:
            print(f"    errors: {w['statuses']} e.g. {w['sample_errors'][0]}")
        print(f"    tasks still open afterwards: {r['tasks_left_open']}")


if __name__ == "__main__":
    main()
