"""Labeling-dispatch benchmark: cleaned -> dispatched latency at a steady upload rate.

Runs its own ingest, clean and labeling-dispatch processes against the local stack (fresh
database ``conveyor_bench_labeling``, fresh consumer groups), a webhook vendor on 127.0.0.1
that acknowledges every delivery at once, and a job on the dataset. Then uploads N generated
640x480 JPEGs at a steady rate (default 1,000 at 50/s) and reads the events themselves from
Kafka: for every asset, the time of its ``conveyor.asset.cleaned.v1`` event and of its task's
``conveyor.task.dispatched.v1`` (both stamped by the services on this one machine's clock).

Prints cleaned -> dispatched p50 / p95 / max and, as the in-run peer, the stage before it
(ingested -> cleaned: one Kafka hop plus clean's work), with the ratio. Not a test.

``--feed events`` measures labeling-dispatch alone: instead of uploading, the benchmark plays
the part of ingest and clean for N synthetic images, publishing their
``conveyor.asset.ingested.v1`` and then ``conveyor.asset.cleaned.v1`` to the topics those
services write (real events, read by the service's own consumer) at the steady rate; only
ingest (for the dataset) and labeling-dispatch run. On a machine where clean cannot analyse 50
images/s, this is the figure that says what dispatching itself adds. The peer is then the
Kafka hop alone: from an event's time to this benchmark reading it back.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import ADMIN_KEY, fresh_services  # noqa: E402
from bench.ingest import make_jpegs, pct, upload_all  # noqa: E402
from shared import endpoints  # noqa: E402
from shared.events import (  # noqa: E402
    ASSET_CLEANED,
    ASSET_INGESTED,
    CLEAN_EVENTS,
    INGEST_EVENTS,
    LABELING_EVENTS,
    TASK_DISPATCHED,
    AssetCleanedV1,
    AssetIngestedV1,
    Envelope,
    event_type_of,
)
from shared.kafka import decode, encode  # noqa: E402
from shared.storage import RAW_BUCKET, content_address  # noqa: E402

DATABASE = "conveyor_bench_labeling"
TIMED = {ASSET_INGESTED.name, ASSET_CLEANED.name, TASK_DISPATCHED.name}


class _Acknowledge(BaseHTTPRequestHandler):
    """A vendor that takes every delivery and says so at once."""

    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        return


class EventClock:
    """Reads the three topics from their end and keeps each timed event's time per asset."""

    def __init__(self) -> None:
        self.times: dict[str, dict[str, float]] = {name: {} for name in TIMED}
        # when this reader got each asset's cleaned event: the Kafka hop, for comparison
        self.read_at: dict[str, float] = {}
        self._consumer = AIOKafkaConsumer(
            INGEST_EVENTS.name,
            CLEAN_EVENTS.name,
            LABELING_EVENTS.name,
            bootstrap_servers=endpoints.KAFKA_BOOTSTRAP_SERVERS,
            group_id=None,
            auto_offset_reset="latest",
        )
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        await self._consumer.start()
        try:
            while not stop.is_set():
                batch = await self._consumer.getmany(timeout_ms=200)
                if self._consumer.assignment() and not self.ready.is_set():
                    for partition in self._consumer.assignment():
                        await self._consumer.position(partition)
                    self.ready.set()
                for records in batch.values():
                    for record in records:
                        self._record(record.value, record.headers)
        finally:
            await self._consumer.stop()

    def _record(self, value: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        if dict(headers).get("ce_type", b"").decode() not in TIMED:
            return
        envelope = decode(value, headers)
        asset = str(envelope.data["asset_id"])
        # The first dispatch of an asset's task counts (replicas and re-sends come later).
        self.times[envelope.type].setdefault(asset, envelope.time.timestamp())
        if envelope.type == ASSET_CLEANED.name:
            self.read_at.setdefault(asset, time.time())


async def feed_events(dataset_id: str, count: int, rate: float) -> list[str]:
    """Publish ingested then cleaned events of ``count`` synthetic images at ``rate`` per second."""
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.KAFKA_BOOTSTRAP_SERVERS, linger_ms=0)
    await producer.start()
    assets: list[str] = []
    started = time.perf_counter()
    try:
        for i in range(count):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            asset = uuid.uuid4()
            sha256 = hashlib.sha256(asset.bytes).hexdigest()
            ingested = AssetIngestedV1(
                asset_id=asset,
                dataset_id=uuid.UUID(dataset_id),
                dataset_slug="bench",
                sha256=sha256,
                size_bytes=60_000,
                media_type="image/jpeg",
                filename=f"{i}.jpg",
                source="upload",
                uploaded_by="bench",
                bucket=RAW_BUCKET,
                object_key=content_address(sha256),
            )
            cleaned = AssetCleanedV1(
                asset_id=asset,
                dataset_id=uuid.UUID(dataset_id),
                dataset_slug="bench",
                media_type="image/jpeg",
                metrics={"width": 640.0, "height": 480.0},
                policy_version=0,
            )
            for payload in (ingested, cleaned):
                event_type = event_type_of(payload)
                envelope = Envelope(
                    id=str(uuid.uuid4()),
                    source="/bench/labeling-dispatch",
                    type=event_type.name,
                    time=datetime.now(UTC),
                    subject=str(asset),
                    data=payload.model_dump(mode="json"),
                )
                value, headers = encode(envelope)
                await producer.send(
                    event_type.topic.name, value=value, key=str(asset).encode(), headers=headers
                )
            assets.append(str(asset))
        await producer.flush()
    finally:
        await producer.stop()
    return assets


async def measure(
    ingest_url: str, images: list[bytes] | None, rate: float, dataset_id: str, count: int
) -> dict[str, float]:
    clock = EventClock()
    stop = asyncio.Event()
    reader = asyncio.create_task(clock.run(stop))
    await asyncio.wait_for(clock.ready.wait(), 30)
    if images is None:
        assets = set(await feed_events(dataset_id, count, rate))
    else:
        uploaded = await asyncio.to_thread(upload_all, ingest_url, "bench", images, 8, rate)
        assets = {a for a, _, _ in uploaded}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if assets <= set(clock.times[TASK_DISPATCHED.name]):
            break
        await asyncio.sleep(0.5)
    stop.set()
    await reader
    ingested, cleaned = clock.times[ASSET_INGESTED.name], clock.times[ASSET_CLEANED.name]
    dispatched = clock.times[TASK_DISPATCHED.name]
    hop = [clock.read_at[a] - cleaned[a] for a in assets if a in clock.read_at and a in cleaned]
    to_dispatch = [dispatched[a] - cleaned[a] for a in assets if a in cleaned and a in dispatched]
    to_clean = [cleaned[a] - ingested[a] for a in assets if a in ingested and a in cleaned]
    return {
        "uploads": len(assets),
        "rate_per_s": rate,
        "cleaned": len([a for a in assets if a in cleaned]),
        "dispatched": len(to_dispatch),
        "cleaned_to_dispatched_p50_ms": round(pct(to_dispatch, 50) * 1000, 1),
        "cleaned_to_dispatched_p95_ms": round(pct(to_dispatch, 95) * 1000, 1),
        "cleaned_to_dispatched_max_ms": round(max(to_dispatch, default=float("nan")) * 1000, 1),
        "ingested_to_cleaned_p50_ms": round(pct(to_clean, 50) * 1000, 1),
        "ingested_to_cleaned_p95_ms": round(pct(to_clean, 95) * 1000, 1),
        "kafka_hop_p50_ms": round(pct(hop, 50) * 1000, 1),
        "kafka_hop_p95_ms": round(pct(hop, 95) * 1000, 1),
    }


def set_up(ingest_url: str, labeling_url: str, vendor_url: str) -> str:
    """A dataset, an ontology, a vendor that takes everything and a job: through the APIs."""
    headers = {"X-API-Key": ADMIN_KEY}
    with httpx.Client(headers=headers, timeout=30) as c:
        created = c.post(f"{ingest_url}/v1/datasets", json={"slug": "bench", "name": "Bench"})
        created.raise_for_status()
        ontology = c.post(
            f"{labeling_url}/v1/ontologies",
            json={"name": "bench", "classes": [{"name": "thing", "shape": "bbox"}]},
        )
        ontology.raise_for_status()
        vendor = c.post(
            f"{labeling_url}/v1/vendors",
            json={
                "name": "bench-vendor",
                "kind": "webhook",
                "url": vendor_url,
                "capacity": 1_000_000,
                "batch_size": 25,
            },
        )
        vendor.raise_for_status()
        job_body = {
            "name": "bench",
            "dataset": "bench",
            "ontology": "bench",
            "vendor_ids": [vendor.json()["id"]],
            "priority": "arrival",
        }
        # labeling-dispatch learns of the dataset from ingest's event, a moment later
        deadline = time.monotonic() + 30
        while (job := c.post(f"{labeling_url}/v1/jobs", json=job_body)).status_code == 404:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        job.raise_for_status()
    return str(created.json()["id"])


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="images uploaded at the rate")
    parser.add_argument("--rate", type=float, default=50.0, help="uploads per second")
    parser.add_argument(
        "--feed",
        choices=["events", "uploads"],
        default="events",
        help="events: play ingest and clean on the topics (labeling-dispatch alone); uploads:"
        " real uploads through ingest and clean",
    )
    args = parser.parse_args()

    names = ("ingest", "labeling") if args.feed == "events" else ("ingest", "clean", "labeling")
    procs = list(fresh_services(names, DATABASE, "labeling").values())
    server = ThreadingHTTPServer((endpoints.HOST, 0), _Acknowledge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    vendor_url = f"http://{endpoints.HOST}:{server.server_address[1]}/deliveries"
    for proc in procs:
        proc.start()
    try:
        dataset_id = set_up(procs[0].url, procs[-1].url, vendor_url)
        images = None
        if args.feed == "uploads":
            print(f"generating {args.count} 640x480 JPEGs...", flush=True)
            images = make_jpegs(args.count, seed=11)
        print(f"feeding {args.count} images ({args.feed}) at {args.rate:.0f}/s...", flush=True)
        figures = asyncio.run(measure(procs[0].url, images, args.rate, dataset_id, args.count))
    finally:
        for proc in procs:
            proc.stop()
        server.shutdown()
    figures["cpu_count"] = os.cpu_count() or 0
    figures["feed"] = args.feed
    figures["deliveries_received"] = _Acknowledge.received
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / f"labeling_dispatch_{args.feed}.json").write_text(json.dumps(figures, indent=2))

    f = figures
    print()
    print(f"Conveyor labeling dispatch ({f['cpu_count']} cores, {' + '.join(names)} running)")
    print(
        f"  {f['uploads']} images ({args.feed}) at {f['rate_per_s']:.0f}/s;"
        f" {f['dispatched']} dispatched"
    )
    print(
        f"  cleaned -> dispatched p50 / p95 / max  {f['cleaned_to_dispatched_p50_ms']} / "
        f"{f['cleaned_to_dispatched_p95_ms']} / {f['cleaned_to_dispatched_max_ms']} ms"
        "   (target p95 < 1000)"
    )
    if args.feed == "uploads":
        ratio = f["cleaned_to_dispatched_p95_ms"] / f["ingested_to_cleaned_p95_ms"]
        print(
            f"  peer: ingested -> cleaned p50 / p95    {f['ingested_to_cleaned_p50_ms']} / "
            f"{f['ingested_to_cleaned_p95_ms']} ms   (ratio of p95s {ratio:.2f})"
        )
    else:
        ratio = f["cleaned_to_dispatched_p95_ms"] / max(f["kafka_hop_p95_ms"], 0.1)
        print(
            f"  peer: the Kafka hop alone p50 / p95    {f['kafka_hop_p50_ms']} / "
            f"{f['kafka_hop_p95_ms']} ms   (ratio of p95s {ratio:.1f})"
        )
    print(f"  deliveries the vendor received: {f['deliveries_received']}")


if __name__ == "__main__":
    main()
