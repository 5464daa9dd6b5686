"""Dashboard benchmark: projection catch-up (events/s) and page load at 100 000 assets.

Runs its own dashboard (and ingest, which resolves API keys) against the local stack: fresh
database ``conveyor_bench_dashboard``, fresh topics and consumer groups. With the dashboard
stopped, the benchmark plays ingest and clean on the topics: one dataset and, for each of N
assets, its ``conveyor.asset.ingested.v1`` and its ``conveyor.asset.cleaned.v1`` (85 %) or
``conveyor.asset.rejected.v1`` (15 %, with reasons), encoded by the services' own encoder
(``shared.kafka.encode``), upload times spread over the last 20 hours. Then:

1. Catch-up: the dashboard is started and ``/v1/changes`` polled until ``events_applied``
   reaches the number published; events/s from the moment it is ready (events applied
   before that are subtracted). Target >= 2 000 events/s. Peer, in the same run: a bare
   aiokafka consumer reading the same records (same poll size as the service's consumer),
   and the same again decoding each record with ``shared.kafka.decode``: the floor of what
   consuming costs before any database work.
2. API: ``/v1/datasets``, ``/v1/funnel``, ``/v1/throughput``, ``/v1/latency`` for the
   dataset, each timed with httpx (the first call, and the median of the next ones).
3. Page load in headless Chromium (Debian's, driven by Playwright): ``/#funnel?dataset=<slug>``
   with the key already in sessionStorage, in a fresh browser context each time; first
   contentful paint from the Paint Timing API, and "data ready" when the funnel's stored count
   shows the number of assets (a MutationObserver stamps ``performance.now()``). Target < 1 s.

Figures are printed and written to bench/out/dashboard.json. It resets the shared topics: run it
under the stack session lock,
``flock /tmp/conveyor-stack-session.lock .venv/bin/python bench/dashboard.py``. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import ADMIN_KEY, fresh_services  # noqa: E402
from deploy.browser import INSTALL_HINT, find_chromium  # noqa: E402
from shared import endpoints  # noqa: E402
from shared.events import (  # noqa: E402
    CLEAN_EVENTS,
    INGEST_EVENTS,
    AssetCleanedV1,
    AssetIngestedV1,
    AssetRejectedV1,
    DatasetCreatedV1,
    Envelope,
    Payload,
    QualityReason,
    event_type_of,
)
from shared.kafka import decode, encode  # noqa: E402

DATABASE = "conveyor_bench_dashboard"
SLUG = "bench-dashboard"
TOPICS = (INGEST_EVENTS.name, CLEAN_EVENTS.name)
# The service's consumer polls this many records at a time (shared/kafka.py EventConsumer).
POLL_RECORDS = 200
REJECTIONS = (
    ("blurry", "image is blurry: edge_sharpness 0.21 < 0.35", 0.21, 0.35),
    ("dark", "image is too dark: mean_luminance 22 < 40", 22.0, 40.0),
    ("exact_duplicate", "the same pixels as an earlier asset", None, None),
    ("near_duplicate", "a near copy of an earlier asset (pHash distance 4)", 4.0, 10.0),
    ("truncated", "the JPEG ends before its end-of-image marker", None, None),
)
Timed = tuple[datetime, str, Payload]


def workload(assets: int, seed: int) -> list[Timed]:
    """The dataset, then per asset its upload and its verdict: (event time, key, payload)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    dataset = uuid.uuid4()
    events: list[Timed] = [
        (
            now - timedelta(hours=21),
            str(dataset),
            DatasetCreatedV1(
                dataset_id=dataset, slug=SLUG, name="Dashboard bench", created_by="bench"
            ),
        )
    ]
    for index in range(assets):
        asset = uuid.uuid4()
        uploaded = now - timedelta(seconds=rng.uniform(60, 20 * 3600))
        sha256 = uuid.uuid4().hex + uuid.uuid4().hex
        events.append(
            (
                uploaded,
                str(asset),
                AssetIngestedV1(
                    asset_id=asset,
                    dataset_id=dataset,
                    dataset_slug=SLUG,
                    sha256=sha256,
                    size_bytes=rng.randint(40_000, 900_000),
                    media_type="image/jpeg",
                    filename=f"frame-{index:06d}.jpg",
                    source="upload",
                    uploaded_by="bench-uploader",
                    bucket="conveyor-raw",
                    object_key=f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}",
                ),
            )
        )
        metrics = {
            "width": 1280.0,
            "height": 720.0,
            "edge_sharpness": round(rng.uniform(0.2, 1.5), 3),
            "mean_luminance": round(rng.uniform(20, 220), 1),
            "structure_fraction": round(rng.uniform(0.01, 0.6), 3),
            "colour_spread": round(rng.uniform(2, 60), 1),
        }
        verdict_at = uploaded + timedelta(seconds=rng.lognormvariate(0.3, 0.6))
        common = {
            "asset_id": asset,
            "dataset_id": dataset,
            "dataset_slug": SLUG,
            "media_type": "image/jpeg",
            "metrics": metrics,
            "policy_version": 1,
        }
        verdict: Payload
        if rng.random() < 0.15:
            code, message, value, threshold = rng.choice(REJECTIONS)
            reason = QualityReason(code=code, message=message, value=value, threshold=threshold)
            verdict = AssetRejectedV1(**common, reasons=[reason])
        else:
            verdict = AssetCleanedV1(**common)
        events.append((verdict_at, str(asset), verdict))
    return events


async def publish(events: list[Timed]) -> None:
    """Every event on its topic, keyed by its aggregate, as ingest and clean publish them."""
    producer = AIOKafkaProducer(
        bootstrap_servers=endpoints.KAFKA_BOOTSTRAP_SERVERS, linger_ms=20, acks="all"
    )
    await producer.start()
    try:
        for at, key, payload in events:
            event_type = event_type_of(payload)
            envelope = Envelope(
                id=str(uuid.uuid4()),
                source="/bench/dashboard",
                type=event_type.name,
                time=at,
                subject=key,
                actor="bench",
                data=payload.model_dump(mode="json"),
                traceparent=f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01",
            )
            value, headers = encode(envelope)
            await producer.send(
                event_type.topic.name, value=value, key=key.encode(), headers=headers
            )
        await producer.flush()
    finally:
        await producer.stop()


async def bare_consume(records: int, decoding: bool) -> float:
    """Seconds for a plain aiokafka consumer to read ``records`` of the topics (optionally
    decoding each with the services' decoder), from its first poll."""
    consumer = AIOKafkaConsumer(
        *TOPICS,
        bootstrap_servers=endpoints.KAFKA_BOOTSTRAP_SERVERS,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=POLL_RECORDS,
    )
    await consumer.start()
    try:
        seen = 0
        started = time.perf_counter()
        while seen < records:
            batch = await consumer.getmany(timeout_ms=500)
            for got in batch.values():
                if decoding:
                    for record in got:
                        decode(record.value, record.headers)
                seen += len(got)
        return time.perf_counter() - started
    finally:
        await consumer.stop()


def catch_up(dashboard: Any, target: int, timeout: float) -> dict[str, float]:
    """Start the dashboard; seconds from ready until ``events_applied`` reaches ``target``."""
    spawned = time.perf_counter()
    dashboard.start()
    with httpx.Client(base_url=dashboard.url, headers={"X-API-Key": ADMIN_KEY}) as client:
        ready = time.perf_counter()
        at_ready = int(client.get("/v1/changes").json()["events_applied"])
        applied = at_ready
        deadline = time.monotonic() + timeout
        while applied < target and time.monotonic() < deadline:
            time.sleep(0.1)
            applied = int(client.get("/v1/changes").json()["events_applied"])
        done = time.perf_counter()
    return {
        "start_to_ready_s": ready - spawned,
        "applied_at_ready": at_ready,
        "applied": applied,
        "ready_to_done_s": done - ready,
    }


def time_api(url: str, repeats: int) -> dict[str, dict[str, float]]:
    """Milliseconds of each API call the funnel and throughput pages make: first, median."""
    calls = {
        "datasets": ("/v1/datasets", {}),
        "funnel": ("/v1/funnel", {"dataset": SLUG}),
        "throughput": ("/v1/throughput", {"dataset": SLUG}),
        "latency": ("/v1/latency", {"dataset": SLUG}),
        "funnel_24h": (
            "/v1/funnel",
            {"dataset": SLUG, "since": (datetime.now(UTC) - timedelta(hours=24)).isoformat()},
        ),
        "changes": ("/v1/changes", {}),
    }
    figures: dict[str, dict[str, float]] = {}
    with httpx.Client(base_url=url, headers={"X-API-Key": ADMIN_KEY}, timeout=60) as client:
        for name, (path, params) in calls.items():
            times = []
            for _ in range(repeats + 1):
                started = time.perf_counter()
                response = client.get(path, params=params)
                times.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
            figures[name] = {
                "first_ms": round(times[0], 1),
                "median_ms": round(statistics.median(times[1:]), 1),
            }
    return figures


# Stamps when the funnel's stored count first shows the expected number.
DATA_READY_SCRIPT = """
sessionStorage.setItem("conveyor.apiKey", %(key)s);
window.__dataReady = null;
new MutationObserver((_, observer) => {
  const n = document.querySelector('#funnel-stats [data-stage="stored"] .n');
  if (n && n.textContent.replace(/\\D/g, "") === %(expected)s) {
    window.__dataReady = performance.now();
    observer.disconnect();
  }
}).observe(document, { childList: true, subtree: true, characterData: true });
"""


def page_load(url: str, expected: int, loads: int) -> list[dict[str, float]]:
    """First contentful paint and data ready (ms from navigation start) of the funnel page
    for the dataset, each in a fresh browser context (no cache, no session)."""
    from playwright.sync_api import sync_playwright

    path = find_chromium()
    if path is None:
        raise SystemExit(f"no Chromium for the page-load figures. {INSTALL_HINT}")
    script = DATA_READY_SCRIPT % {
        "key": json.dumps(ADMIN_KEY),
        "expected": json.dumps(str(expected)),
    }
    results = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=path,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run"],
        )
        try:
            for _ in range(loads):
                context = browser.new_context(viewport={"width": 1400, "height": 900})
                page = context.new_page()
                page.add_init_script(script)
                page.goto(f"{url}/#funnel?dataset={SLUG}", wait_until="load")
                page.wait_for_function("window.__dataReady !== null", timeout=30_000)
                fcp = page.evaluate(
                    "performance.getEntriesByType('paint')"
                    ".find(e => e.name === 'first-contentful-paint')?.startTime ?? null"
                )
                calls = page.evaluate(
                    "performance.getEntriesByType('resource')"
                    ".filter(e => e.name.includes('/v1/'))"
                    ".map(e => [new URL(e.name).pathname, e.startTime, e.duration])"
                )
                results.append(
                    {
                        "fcp_ms": round(fcp, 1) if fcp is not None else -1.0,
                        "data_ready_ms": round(page.evaluate("window.__dataReady"), 1),
                        "load_event_ms": round(
                            page.evaluate(
                                "performance.getEntriesByType('navigation')[0].loadEventEnd"
                            ),
                            1,
                        ),
                        "api_calls": [[p, round(s, 1), round(d, 1)] for p, s, d in calls],
                    }
                )
                context.close()
        finally:
            browser.close()
    return results


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=100_000, help="assets (2 events each)")
    parser.add_argument("--loads", type=int, default=5, help="page loads in the browser")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per API endpoint")
    args = parser.parse_args()

    procs = fresh_services(["ingest", "dashboard"], DATABASE, "dashboard")
    ingest, dashboard = procs["ingest"], procs["dashboard"]
    # the services create the topics and the schema at start; the dashboard then waits
    ingest.start()
    dashboard.start()
    dashboard.stop()
    try:
        print(f"building {args.assets} assets' events...", flush=True)
        events = workload(args.assets, seed=12)
        print(f"publishing {len(events)} events (dashboard stopped)...", flush=True)
        started = time.perf_counter()
        asyncio.run(publish(events))
        print(f"  published in {time.perf_counter() - started:.1f} s", flush=True)

        print("peer: bare aiokafka consume of the same topics...", flush=True)
        bare = asyncio.run(bare_consume(len(events), decoding=False))
        bare_decoded = asyncio.run(bare_consume(len(events), decoding=True))

        print("starting the dashboard and timing its catch-up...", flush=True)
        caught = catch_up(dashboard, len(events), timeout=1200)
        print("timing the API...", flush=True)
        api = time_api(dashboard.url, args.repeats)
        print("loading the page in Chromium...", flush=True)
        loads = page_load(dashboard.url, args.assets, args.loads)
    finally:
        dashboard.stop()
        ingest.stop()

    applied_after_ready = caught["applied"] - caught["applied_at_ready"]
    rate = applied_after_ready / caught["ready_to_done_s"] if caught["ready_to_done_s"] else 0.0
    data_ready = [load["data_ready_ms"] for load in loads]
    fcp = [load["fcp_ms"] for load in loads]
    figures: dict[str, Any] = {
        "cpu_count": os.cpu_count() or 0,
        "assets": args.assets,
        "events": len(events),
        "catch_up": {
            "start_to_ready_s": round(caught["start_to_ready_s"], 2),
            "events_applied_at_ready": int(caught["applied_at_ready"]),
            "events_applied": int(caught["applied"]),
            "ready_to_done_s": round(caught["ready_to_done_s"], 2),
            "events_per_s": round(rate, 1),
            "complete": caught["applied"] >= len(events),
        },
        "peer_bare_consume": {
            "s": round(bare, 2),
            "records_per_s": round(len(events) / bare, 1),
        },
        "peer_bare_consume_decode": {
            "s": round(bare_decoded, 2),
            "records_per_s": round(len(events) / bare_decoded, 1),
        },
        "api_ms": api,
        "page": {
            "loads": loads,
            "fcp_ms_first": fcp[0],
            "fcp_ms_median": round(statistics.median(fcp), 1),
            "data_ready_ms_first": data_ready[0],
            "data_ready_ms_median": round(statistics.median(data_ready), 1),
            "data_ready_ms_max": max(data_ready),
        },
    }
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "dashboard.json").write_text(json.dumps(figures, indent=2))
    report(figures)
    if not figures["catch_up"]["complete"]:
        print(f"  INCOMPLETE: {len(events) - caught['applied']:.0f} events not applied in time")
        sys.exit(1)


def report(f: dict[str, Any]) -> None:
    """Print the figures."""
    c, bare, decoded, page = (
        f["catch_up"],
        f["peer_bare_consume"],
        f["peer_bare_consume_decode"],
        f["page"],
    )
    print()
    print(f"Conveyor dashboard ({f['cpu_count']} cores; ingest + dashboard alone on the stack)")
    print(f"  {f['assets']} assets, {f['events']} events (upload + verdict each)")
    print(
        f"  catch-up events/s (ready -> all applied)      {c['events_per_s']}"
        f"   ({c['ready_to_done_s']} s; target >= 2000/s; start to ready {c['start_to_ready_s']} s)"
    )
    print(
        f"  peer: bare aiokafka consume                   {bare['records_per_s']}/s"
        f"   ({bare['s']} s)"
    )
    print(
        f"  peer: bare consume + shared decode            {decoded['records_per_s']}/s"
        f"   ({decoded['s']} s)"
    )
    if c["events_per_s"]:
        print(
            f"  ratio bare consume / dashboard                "
            f"{bare['records_per_s'] / c['events_per_s']:.1f}"
            f"  (with decode: {decoded['records_per_s'] / c['events_per_s']:.1f})"
        )
    print(f"  API at {f['assets']} assets, ms (first call / median of the next):")
    for name, t in f["api_ms"].items():
        print(f"    {name:<12} {t['first_ms']:>8} / {t['median_ms']}")
    print(f"  funnel page in Chromium, {len(page['loads'])} loads (target data ready < 1000 ms):")
    print(
        f"    first contentful paint  first {page['fcp_ms_first']} ms,"
        f" median {page['fcp_ms_median']} ms"
    )
    print(
        f"    data ready              first {page['data_ready_ms_first']} ms,"
        f" median {page['data_ready_ms_median']} ms, max {page['data_ready_ms_max']} ms"
    )


if __name__ == "__main__":
    main()
