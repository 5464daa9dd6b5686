"""The dashboard's backlog, health and vendors pages over the running services: clean's lag
grows by one per upload while clean is stopped and drains after it restarts; dead letters
newest first; every service and server up with versions; QC down is told, not a 500."""

from __future__ import annotations

import asyncio
import importlib.metadata
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from deploy.services import ServiceProcess
from tests.conftest import ADMIN_KEY, KAFKA
from tests.e2e.test_clean_pipeline import encode, photo, upload
from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("services")

INGEST_TOPIC = "conveyor.ingest.events"
UPLOADS = 200
PER_REQUEST = 25


@pytest.fixture
def board(dashboard_url: str, viewer_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dashboard_url, headers={"X-API-Key": viewer_key}, timeout=30) as c:
        yield c


def backlog(board: httpx.Client, **params: Any) -> dict[str, Any]:
    response = board.get("/v1/backlog", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def clean_lag(board: httpx.Client, group: str) -> int | None:
    """Clean's lag on the ingest topic, None until Kafka has an offset of the group."""
    body = backlog(board)
    assert body["lag_error"] is None, body["lag_error"]
    rows = [r for r in body["lag"] if r["group"] == group and r["topic"] == INGEST_TOPIC]
    return rows[0]["lag"] if rows else None


def test_clean_lag_counts_uploads_while_clean_is_stopped_and_drains_after_restart(
    services: dict[str, ServiceProcess],
    service_env: dict[str, str],
    uploader: httpx.Client,
    board: httpx.Client,
    dataset: str,
) -> None:
    group = service_env["CONVEYOR_CLEAN_CONSUMER_GROUP"]
    # clean has committed on the topic and is through: the starting point is no lag
    upload(uploader, dataset, "first.jpg", encode(photo(1)))
    eventually(lambda: clean_lag(board, group) == 0, timeout=60)
    small = [encode(photo(i, (64, 48))) for i in range(UPLOADS)]
    clean = services["clean"]
    clean.stop()
    try:
        for start in range(0, UPLOADS, PER_REQUEST):
            batch = range(start, start + PER_REQUEST)
            files = [("files", (f"lag-{i}.jpg", small[i])) for i in batch]
            response = uploader.post(f"/v1/datasets/{dataset}/assets", files=files)
            assert response.status_code == 201, response.text
        # each upload is one asset.ingested; nothing else of this test goes on that topic
        lag = eventually(lambda: (n := clean_lag(board, group)) and n >= UPLOADS and n, 60)
        assert UPLOADS <= lag <= UPLOADS + 5
        row = next(
            r for r in backlog(board)["lag"] if r["group"] == group and r["topic"] == INGEST_TOPIC
        )
        assert row["end"] - row["committed"] == row["lag"] and row["partitions"] >= 1
    finally:
        clean.start()
    eventually(lambda: clean_lag(board, group) == 0, timeout=120, interval=0.5)


def test_outbox_rows_waiting_come_from_each_services_metrics(board: httpx.Client) -> None:
    def outbox() -> list[dict[str, Any]] | None:
        rows: list[dict[str, Any]] = backlog(board)["outbox"]
        return rows if all(r["error"] is None for r in rows) else None

    rows = eventually(outbox, timeout=30)
    # a figure for the report, not an assertion
    took = []
    for _ in range(10):
        started = time.perf_counter()
        backlog(board)
        took.append(time.perf_counter() - started)
    print(f"GET /v1/backlog: median {sorted(took)[5] * 1000:.0f} ms over 10")
    assert [r["service"] for r in rows] == ["ingest", "clean", "labeling", "qc"]
    assert all(isinstance(r["waiting"], int) and r["waiting"] >= 0 for r in rows)


def test_dead_letters_are_listed_newest_first_with_their_error(
    board: httpx.Client, service_env: dict[str, str]
) -> None:
    async def produce() -> list[tuple[int, int]]:
        producer = AIOKafkaProducer(bootstrap_servers=KAFKA)
        await producer.start()
        sent = []
        try:
            for n in range(2):
                meta = await producer.send_and_wait(
                    "conveyor.objectstore.events", f"garbage {n}".encode(), key=b"dashboard-dlq"
                )
                sent.append((meta.partition, meta.offset))
                await asyncio.sleep(1.0)  # the second is dead-lettered later
        finally:
            await producer.stop()
        return sent

    first, second = asyncio.run(produce())
    group = service_env["CONVEYOR_INGEST_CONSUMER_GROUP"]

    def letters() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = backlog(board, dead_letters_limit=500)["dead_letters"][
            "items"
        ]
        mine = [
            i
            for i in items
            if i["consumer_group"] == group
            and (i["original_partition"], i["original_offset"]) in (first, second)
        ]
        return items if len(mine) == 2 else None

    items = eventually(letters, timeout=60)
    assert [i["at"] for i in items] == sorted((i["at"] for i in items), reverse=True)
    mine = [
        (i["original_partition"], i["original_offset"])
        for i in items
        if i["consumer_group"] == group
        and (i["original_partition"], i["original_offset"]) in (first, second)
    ]
    assert mine == [second, first]
    letter = next(i for i in items if i["consumer_group"] == group)
    assert "not a CloudEvent" in letter["error"]
    assert letter["original_topic"] == "conveyor.objectstore.events"
    assert backlog(board)["dead_letters"]["count"] >= 2
    assert backlog(board, dead_letters_limit=1)["dead_letters"]["items"] == items[:1]
    assert board.get("/v1/backlog", params={"dead_letters_limit": -1}).status_code == 422


def test_health_lists_every_service_up_with_its_version_and_the_servers(
    board: httpx.Client,
) -> None:
    started = time.perf_counter()
    body = board.get("/v1/health").json()
    print(f"GET /v1/health: {(time.perf_counter() - started) * 1000:.0f} ms")
    version = importlib.metadata.version("conveyor")
    services = {s["name"]: s for s in body["services"]}
    assert set(services) == {"ingest", "clean", "labeling", "qc", "audit", "dashboard"}
    for service in services.values():
        assert service["up"] and service["ready"], service
        assert service["version"] == version
        assert set(service["checks"].values()) == {"ok"}, service
    servers = {s["name"]: s for s in body["servers"]}
    assert set(servers) == {"kafka", "postgres", "s3"}
    assert all(s["up"] and s["version"] and s["error"] is None for s in servers.values())
    assert servers["postgres"]["version"].startswith("PostgreSQL ")
    assert servers["s3"]["version"].startswith("SeaweedFS")
    assert "Fetch v" in servers["kafka"]["version"]
    # the trace viewer need not run in tests (make run starts it); its address is told
    assert body["trace_viewer"]["url"] == "http://127.0.0.1:16686/"
    assert isinstance(body["trace_viewer"]["up"], bool)


def test_vendors_merge_labelings_vendors_with_qcs_scorecards_and_survive_qc_down(
    services: dict[str, ServiceProcess], labeling_url: str, board: httpx.Client
) -> None:
    name = f"dash-vendor-{uuid.uuid4().hex[:6]}"
    body = {"name": name, "kind": "webhook", "url": "http://127.0.0.1:9/hook", "capacity": 7}
    created = httpx.post(
        f"{labeling_url}/v1/vendors", json=body, headers={"X-API-Key": ADMIN_KEY}, timeout=30
    )
    assert created.status_code == 201, created.text
    vendor_id = created.json()["id"]

    def listed() -> dict[str, Any] | None:
        answer = board.get("/v1/vendors").json()
        assert answer["error"] is None, answer
        return next((v for v in answer["items"] if v["vendor_id"] == vendor_id), None)

    vendor = eventually(listed, timeout=30)
    assert (vendor["name"], vendor["kind"], vendor["capacity"]) == (name, "webhook", 7)
    # nothing answered yet: QC has no scorecard for it
    assert vendor["scorecard"] is None and vendor["trend"] == []
    tasks = next(v for v in backlog(board)["vendors"] if v["vendor_id"] == vendor_id)
    assert (tasks["dispatched"], tasks["rework"]) == (0, 0)
    assert board.get("/v1/vendors", params={"dataset": "no-such"}).status_code == 404

    qc = services["qc"]
    qc.stop()
    try:
        down = board.get("/v1/vendors")
        assert down.status_code == 200
        assert "QC did not answer" in down.json()["error"]
        assert any(v["vendor_id"] == vendor_id for v in down.json()["items"])
        health = {s["name"]: s for s in board.get("/v1/health").json()["services"]}
        assert not health["qc"]["up"] and health["qc"]["error"]
        assert health["ingest"]["up"]
        outbox = {r["service"]: r for r in backlog(board)["outbox"]}
        assert outbox["qc"]["waiting"] is None and outbox["qc"]["error"]
    finally:
        qc.start()
