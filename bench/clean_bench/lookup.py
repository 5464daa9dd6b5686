"""Near-duplicate lookup as a dataset's index grows.

A fresh database ``conveyor_bench_lookup`` with clean's own schema (its migrations),
``quality_reports`` bulk-loaded by COPY with 10 k, 100 k and 1 M random 64-bit hashes of one
dataset. Per size: the cold read of the hashes into the in-memory copy, then p50/p95 over 200
probes of what the service does per asset: bring the copy up to date from Postgres
(``repository.hashes_since`` in a transaction) and scan it (``DatasetHashes.nearest``); half the
probes are stored hashes with up to 10 bits flipped, and each of those must be found. Stage 1
of the verified search (``DatasetHashes.candidates``: full distance within 14 bits, crop
distances within 14 for full hashes within 22 bits and within 10 for every row, at most 8) is
timed on the same probes, with how many candidates it proposes; verifying them (stage 2) is
timed by ``near_accuracy``, per candidate.

Alone: ``.venv/bin/python -m bench.clean_bench.lookup --sizes 1000,10000,100000,1000000``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import numpy as np

from deploy.sandbox import recreate_database
from services.clean import repository
from services.clean.checks import CROP_CANDIDATE_RADIUS, CROP_MATCH_RADIUS
from services.clean.near_index import CROPS, DatasetHashes
from services.clean.policy import PolicyRules
from shared.endpoints import postgres_url

from .stack import DATABASE, PG, ROOT
from .stats import pct

LOOKUP_DATABASE = "conveyor_bench_lookup"


def report_rows(
    dataset: uuid.UUID, rng: np.random.Generator, start: int, count: int, chunk: int = 50_000
) -> Iterator[list[tuple[Any, ...]]]:
    """clean.quality_reports rows for ``count`` random hashes (asset numbers from ``start``)."""
    for offset in range(0, count, chunk):
        n = min(chunk, count - offset)
        hashes = rng.integers(0, np.iinfo(np.uint64).max, n, dtype=np.uint64, endpoint=True)
        crops = rng.integers(0, np.iinfo(np.uint64).max, (n, CROPS), dtype=np.uint64)
        signed = hashes.view(np.int64).tolist()
        rows: list[tuple[Any, ...]] = []
        for i in range(n):
            number = start + offset + i + 1
            ident = uuid.UUID(int=number)
            empty = ("{}", "[]", "[]", "[]")  # metrics, structural, reasons, flags
            packed = repository.pack_crops(crops[i].tolist())
            row = (ident, dataset, "image/jpeg", "cleaned", *empty, signed[i], packed, 0, number)
            rows.append(row)
        yield rows


REPORT_COLUMNS = (
    "asset_id",
    "dataset_id",
    "media_type",
    "status",
    "metrics",
    "structural",
    "reasons",
    "flags",
    "phash",
    "crop_hashes",
    "policy_version",
    "arrival",
)


async def lookup_bench(
    sizes: list[int], probes: int, budget_s: float, probe_budget_s: float
) -> dict[str, Any]:
    """The service's near-duplicate lookup with N random hashes stored for one dataset.

    A fresh database gets clean's real schema (its migrations), and ``quality_reports`` is
    bulk-loaded by COPY. Per size: the cold read of the dataset's hashes into the in-memory
    copy (``repository.hashes_since`` from arrival 0), then per probe what the service does
    for each asset: bring the copy up to date (``hashes_since`` after its newest arrival, in a
    transaction) and find the nearest earlier image (``DatasetHashes.nearest``, full and crop
    hashes).
    """
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    await recreate_database(LOOKUP_DATABASE)
    url = postgres_url(LOOKUP_DATABASE, driver="asyncpg")
    env = {**os.environ, "CONVEYOR_DATABASE_URL": url, "CONVEYOR_LOG_LEVEL": "WARNING"}
    migrate = [sys.executable, "-m", "services.clean", "migrate"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True, capture_output=True)
    rng = np.random.default_rng(20240604)
    dataset = uuid.uuid4()
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    engine = create_async_engine(url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    radius = PolicyRules().near_duplicate_radius
    results: dict[str, Any] = {
        "radius": radius,
        "crop_radius": CROP_MATCH_RADIUS,
        "candidate_radius": CROP_CANDIDATE_RADIUS,
        "sizes": {},
    }
    stored: list[int] = []
    loaded = 0
    try:
        for size in sizes:
            extra = size - loaded
            print(f"  loading {extra} hashes ({size} in all)...", flush=True)
            started = time.perf_counter()
            for rows in report_rows(dataset, rng, loaded, extra):
                if len(stored) < 10_000:
                    stored += [repository.to_unsigned(r[8]) for r in rows[:1000]]
                await conn.copy_records_to_table(
                    "quality_reports", schema_name="clean", records=rows, columns=REPORT_COLUMNS
                )
            await conn.execute("ANALYZE clean.quality_reports")
            load_s = time.perf_counter() - started
            loaded = size
            cold = time.perf_counter()
            copy = DatasetHashes()
            async with sessions() as session:
                copy.extend(await repository.hashes_since(session, dataset, 0))
            cold_s = time.perf_counter() - cold
            queries = []
            for i in range(probes + 20):
                if i % 2 == 0:  # a stored hash with 0-10 bits flipped: must be found
                    flips = rng.choice(64, int(rng.integers(0, radius + 1)), replace=False)
                    query = stored[int(rng.integers(len(stored)))]
                    for bit in flips:
                        query ^= 1 << int(bit)
                else:
                    query = int(rng.integers(0, np.iinfo(np.uint64).max, dtype=np.uint64))
                queries.append((i % 2 == 0, query))
            query_crops = rng.integers(0, 2**63, (len(queries), CROPS), dtype=np.uint64).tolist()
            timings: list[float] = []
            scan_only: list[float] = []
            stage_one: list[float] = []
            proposed: list[int] = []
            missed = 0
            probing = time.perf_counter()
            for i, (planted, query) in enumerate(queries):
                if len(timings) >= 30 and time.perf_counter() - probing > probe_budget_s:
                    break
                t0 = time.perf_counter()
                async with sessions() as session, session.begin():
                    newer = await repository.hashes_since(session, dataset, copy.newest_arrival)
                    copy.extend(newer)
                    t1 = time.perf_counter()
                    found = copy.nearest(query, query_crops[i])
                t2 = time.perf_counter()
                candidates = copy.candidates(query, query_crops[i])
                t3 = time.perf_counter()
                if i < 20:
                    continue  # warm-up: connection pool, statement caches
                timings.append(t2 - t0)
                scan_only.append(t2 - t1)
                stage_one.append(t3 - t2)
                proposed.append(len(candidates))
                missed += planted and found is None
            results["sizes"][str(size)] = {
                "loaded_hashes": extra,
                "load_s": load_s,
                "cold_read_s": cold_s,
                "memory_mb": copy.nbytes / 2**20,
                "probes": len(timings),
                "lookup_p50_ms": pct(timings, 50) * 1000,
                "lookup_p95_ms": pct(timings, 95) * 1000,
                "scan_p50_ms": pct(scan_only, 50) * 1000,
                "scan_p95_ms": pct(scan_only, 95) * 1000,
                "candidates_p50_ms": pct(stage_one, 50) * 1000,
                "candidates_p95_ms": pct(stage_one, 95) * 1000,
                "candidates_mean": float(np.mean(proposed)) if proposed else 0.0,
                "planted_missed": int(missed),
            }
            r = results["sizes"][str(size)]
            print(
                f"    loaded in {load_s:.1f} s, cold read {cold_s:.2f} s; lookup p50 "
                f"{r['lookup_p50_ms']:.2f} ms, p95 {r['lookup_p95_ms']:.2f} ms; stage 1 p50 "
                f"{r['candidates_p50_ms']:.2f} ms, p95 {r['candidates_p95_ms']:.2f} ms, "
                f"{r['candidates_mean']:.2f} candidates",
                flush=True,
            )
    finally:
        await engine.dispose()
        await conn.close()
    return results


async def ensure_database() -> None:
    """Create the benchmark database if the end-to-end phase did not (it was skipped)."""
    try:
        conn = await asyncpg.connect(PG)
    except asyncpg.InvalidCatalogNameError:
        await recreate_database(DATABASE)
    else:
        await conn.close()


def main() -> None:
    """The lookup figures alone (the stack's Postgres must be up)."""
    import argparse
    import asyncio
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--probe-budget", type=float, default=60)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    figures = asyncio.run(lookup_bench(sizes, args.probes, 240, args.probe_budget))
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
