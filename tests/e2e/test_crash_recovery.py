"""kill -9 in the middle of a stream of uploads loses nothing and doubles nothing."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deploy.services import ServiceProcess
from tests.conftest import ADMIN_KEY
from tests.media import image
from tests.waiting import eventually

UPLOADS = 500

pytestmark = pytest.mark.slow


def audit_counts(auditor: httpx.Client, *types: str) -> collections.Counter[str]:
    """How many audit records of these types each subject has."""
    counts: collections.Counter[str] = collections.Counter()
    for kind in types:
        lines = auditor.get("/v1/audit/export", params={"type": kind}).text.splitlines()
        counts.update(json.loads(line)["subject"] for line in lines if line.strip())
    return counts


def consumed_ok(service_url: str, event_type: str) -> float:
    """Events of a type a service process handled successfully, from its /metrics."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in httpx.get(f"{service_url}/metrics").text.splitlines()
        if line.startswith("conveyor_events_consumed_total{")
        and f'type="{event_type}"' in line
        and 'outcome="ok"' in line
    )


def partitions_assigned(service_url: str) -> float:
    """Partitions a service process consumes, from its /metrics."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in httpx.get(f"{service_url}/metrics").text.splitlines()
        if line.startswith("conveyor_consumer_partitions_assigned{")
    )


@contextlib.contextmanager
def second_copy(
    name: str, port: int, service_env: dict[str, str], run_dir: Path
) -> Iterator[ServiceProcess]:
    """Another process of a service in the same consumer group, on its own port."""
    proc = ServiceProcess(
        name,
        env={**service_env, f"CONVEYOR_{name.upper()}_PORT": str(port)},
        log_dir=run_dir / f"{name}2",
        run_dir=run_dir / f"{name}2",
    )
    proc.start()
    try:
        # It must hold partitions before the test sends events, or the first process could
        # handle them all while the group is still rebalancing.
        eventually(lambda: partitions_assigned(proc.url) > 0, timeout=60)
        yield proc
    finally:
        proc.stop()


def upload_each(ingest_url: str, slug: str, contents: list[tuple[str, bytes]]) -> list[str]:
    """Upload files one request each; their asset ids."""
    with httpx.Client(base_url=ingest_url, headers={"X-API-Key": ADMIN_KEY}, timeout=30) as c:
        return [
            c.post(f"/v1/datasets/{slug}/assets", files=[("files", item)]).json()["items"][0]["id"]
            for item in contents
        ]


async def _upload_with_retries(
    client: httpx.AsyncClient, slug: str, name: str, content: bytes
) -> dict:
    """Upload until the service answers; a retry after a crash is safe (same bytes = same asset)."""
    deadline = time.monotonic() + 180
    while True:
        try:
            response = await client.post(
                f"/v1/datasets/{slug}/assets", files=[("files", (name, content))]
            )
            if response.status_code == 201:
                return dict(response.json()["items"][0])
            if response.status_code < 500:
                raise AssertionError(f"{response.status_code}: {response.text}")
        except httpx.TransportError:
            pass  # the process is down or died mid-request
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} never uploaded")
        await asyncio.sleep(0.2)


def test_kill_9_of_ingest_and_audit_mid_stream_leaves_one_asset_and_one_record_per_file(
    services: dict[str, ServiceProcess], dataset: str, auditor: httpx.Client
):
    files = {f"f{i:04}.jpg": image(width=32, height=24) for i in range(UPLOADS)}
    progress = {"done": 0}

    async def stream() -> list[dict]:
        queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        for item in files.items():
            queue.put_nowait(item)
        results: list[dict] = []
        async with httpx.AsyncClient(
            base_url=services["ingest"].url, headers={"X-API-Key": ADMIN_KEY}, timeout=30
        ) as client:

            async def worker() -> None:
                while not queue.empty():
                    name, content = queue.get_nowait()
                    results.append(await _upload_with_retries(client, dataset, name, content))
                    progress["done"] += 1

            async def chaos() -> None:
                while progress["done"] < UPLOADS // 4:
                    await asyncio.sleep(0.05)
                services["ingest"].kill()
                progress["ingest_killed_at"] = progress["done"]
                await asyncio.to_thread(services["ingest"].start)
                while progress["done"] < UPLOADS // 2:
                    await asyncio.sleep(0.05)
                services["audit"].kill()
                progress["audit_killed_at"] = progress["done"]
                await asyncio.sleep(1)
                await asyncio.to_thread(services["audit"].start)

            await asyncio.gather(chaos(), *(worker() for _ in range(8)))
        return results

    results = asyncio.run(stream())
    assert len(results) == UPLOADS
    # Both crashes happened with uploads still to go.
    assert progress["ingest_killed_at"] < UPLOADS * 0.9
    assert progress["audit_killed_at"] < UPLOADS * 0.9

    # Exactly one asset per file.
    by_sha = {hashlib.sha256(c).hexdigest(): n for n, c in files.items()}
    with httpx.Client(base_url=services["ingest"].url, headers={"X-API-Key": ADMIN_KEY}) as c:
        assets, cursor = [], None
        while True:
            params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            page = c.get(f"/v1/datasets/{dataset}/assets", params=params).json()
            assets += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                break
    assert len(assets) == UPLOADS
    assert {a["sha256"] for a in assets} == set(by_sha)

    # Exactly one audit record per asset, once the pipeline has drained.
    asset_ids = {a["id"] for a in assets}

    def ingested_records() -> collections.Counter[str] | None:
        counts = audit_counts(auditor, "conveyor.asset.ingested.v1")
        ours = {s: n for s, n in counts.items() if s in asset_ids}
        return collections.Counter(ours) if len(ours) == UPLOADS else None

    counts = eventually(ingested_records, timeout=120, interval=1)
    assert set(counts) == asset_ids
    assert max(counts.values()) == 1
    assert auditor.post("/v1/audit/verify").json()["ok"] is True


def test_two_audit_consumers_keep_one_unbroken_chain(
    services: dict[str, ServiceProcess],
    service_env: dict[str, str],
    run_dir: Path,
    dataset: str,
    auditor: httpx.Client,
):
    with second_copy("audit", 8015, service_env, run_dir) as second:
        files = [(f"{i}.jpg", image()) for i in range(150)]
        ids = upload_each(services["ingest"].url, dataset, files)

        def all_recorded() -> collections.Counter[str] | None:
            counts = audit_counts(auditor, "conveyor.asset.ingested.v1")
            return counts if all(counts[i] for i in ids) else None

        counts = eventually(all_recorded, timeout=60)
        assert all(counts[i] == 1 for i in ids)
        # Both processes appended: the second one consumed some of the events itself.
        assert consumed_ok(second.url, "conveyor.asset.ingested.v1") > 0
        verdict = auditor.post("/v1/audit/verify").json()
        assert verdict["ok"] is True, verdict
        seqs = [
            r["seq"]
            for r in auditor.get("/v1/audit/records", params={"limit": 1000}).json()["items"]
        ]
        assert seqs == list(range(1, len(seqs) + 1))


def test_two_clean_processes_check_every_asset_exactly_once(
    services: dict[str, ServiceProcess],
    service_env: dict[str, str],
    run_dir: Path,
    dataset: str,
    auditor: httpx.Client,
):
    with second_copy("clean", 8012, service_env, run_dir) as second:
        files = [(f"{i}.png", image(width=96, height=96, ext=".png")) for i in range(80)]
        ids = upload_each(services["ingest"].url, dataset, files)
        verdicts = ("conveyor.asset.cleaned.v1", "conveyor.asset.rejected.v1")

        def all_judged() -> collections.Counter[str] | None:
            counts = audit_counts(auditor, *verdicts)
            return counts if all(counts[i] for i in ids) else None

        counts = eventually(all_judged, timeout=90)
        assert all(counts[i] == 1 for i in ids), {i: counts[i] for i in ids if counts[i] != 1}
        # the second process took part
        assert consumed_ok(second.url, "conveyor.asset.ingested.v1") > 0
