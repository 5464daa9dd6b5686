"""Across services: HTTP or bucket drop in, Kafka events, audit records and traces out."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared import endpoints
from tests.conftest import KAFKA, PG_SUPERUSER_DSN, TEST_DB, minio_client, read_spans
from tests.media import image
from tests.waiting import eventually

pytestmark = pytest.mark.usefixtures("services")


def timeline(auditor: httpx.Client, asset_id: str) -> list[dict]:
    """The asset's ingest record(s); clean's verdict on it lands in the same timeline."""
    items = auditor.get(f"/v1/audit/assets/{asset_id}/timeline").json()["items"]
    return [r for r in items if r["type"] == "conveyor.asset.ingested.v1"]


def records(auditor: httpx.Client, **params: str) -> list[dict]:
    return auditor.get("/v1/audit/records", params={"limit": 1000, **params}).json()["items"]


def test_http_upload_lands_in_the_audit_history_in_the_same_trace(
    uploader: httpx.Client, auditor: httpx.Client, dataset: str, run_dir: Path
):
    response = uploader.post(
        f"/v1/datasets/{dataset}/assets", files=[("files", ("t.jpg", image()))]
    )
    asset_id = response.json()["items"][0]["id"]
    (record,) = eventually(lambda: timeline(auditor, asset_id))
    assert record["type"] == "conveyor.asset.ingested.v1"
    assert record["actor"] == "test-uploader"
    assert record["service"] == "/conveyor/ingest"
    assert record["payload"]["asset_id"] == asset_id

    trace_id = "0x" + record["trace_id"]
    # The upload request's server span (ingest process) carries the recorded trace id...
    request_span = eventually(
        lambda: [
            s
            for s in read_spans(run_dir / "ingest-spans.jsonl")
            if s["context"]["trace_id"] == trace_id and s["kind"] == "SpanKind.SERVER"
        ]
    )[0]
    assert request_span["name"] == "POST /v1/datasets/{slug}/assets"
    # ...and so do the audit process's consumer span and its database spans.
    audit_spans = eventually(
        lambda: [
            s
            for s in read_spans(run_dir / "audit-spans.jsonl")
            if s["context"]["trace_id"] == trace_id
        ]
    )
    names = {s["name"] for s in audit_spans}
    assert "process conveyor.ingest.events" in names
    ingest_names = {
        s["name"]
        for s in read_spans(run_dir / "ingest-spans.jsonl")
        if s["context"]["trace_id"] == trace_id
    }
    assert "publish conveyor.ingest.events" in ingest_names
    assert any(n.startswith("PUT") for n in ingest_names), ingest_names  # the S3 write
    # The clean verdict continues the same trace: clean's spans for this asset (its read of
    # the object included) and the verdict's audit record carry the upload's trace id.
    verdict = eventually(
        lambda: [
            r
            for r in auditor.get(f"/v1/audit/assets/{asset_id}/timeline").json()["items"]
            if r["type"] in ("conveyor.asset.cleaned.v1", "conveyor.asset.rejected.v1")
        ]
    )[0]
    assert verdict["trace_id"] == record["trace_id"]
    # Spans reach the file in batches, so they may trail the audit record a little: wait for
    # clean's measure and judge spans and its S3 read (a GET) in this trace.
    wanted = {"clean measure", "clean judge"}

    def clean_names() -> set[str] | None:
        names = {
            s["name"]
            for s in read_spans(run_dir / "clean-spans.jsonl")
            if s["context"]["trace_id"] == trace_id
        }
        return names if wanted <= names and any(n.startswith("GET") for n in names) else None

    eventually(clean_names)


def test_bulk_drop_into_the_landing_bucket_becomes_assets(
    uploader: httpx.Client, auditor: httpx.Client, dataset: str
):
    client = minio_client()
    contents = {f"{dataset}/batch/{i:03}.jpg": image() for i in range(40)}
    for key, content in contents.items():
        client.put_object("conveyor-landing", key, io.BytesIO(content), len(content))

    def listed() -> list[dict]:
        items = uploader.get(f"/v1/datasets/{dataset}/assets", params={"limit": 100}).json()
        return items["items"] if len(items["items"]) == len(contents) else []

    assets = eventually(listed, timeout=60)
    assert {a["source"] for a in assets} == {"objectstore"}
    assert {a["filename"] for a in assets} == {k.rsplit("/", 1)[1] for k in contents}
    for asset in assets:
        recorded = eventually(lambda a=asset: timeline(auditor, a["id"]))
        assert [r["type"] for r in recorded] == ["conveyor.asset.ingested.v1"]
    # Ingested drops leave the landing bucket: their bytes now live once, in conveyor-raw.
    eventually(
        lambda: (
            not [
                o
                for o in client.list_objects(
                    "conveyor-landing", prefix=f"{dataset}/", recursive=True
                )
                if not o.is_dir
            ]
        )
    )


def test_drop_into_an_unknown_dataset_is_recorded_as_an_error_event(auditor: httpx.Client):
    key = f"nobody-{uuid.uuid4().hex[:6]}/x.jpg"
    content = image()
    minio_client().put_object("conveyor-landing", key, io.BytesIO(content), len(content))
    subject = f"s3://conveyor-landing/{key}"
    found = eventually(
        lambda: records(auditor, subject=subject, type="conveyor.ingest.drop_rejected.v1")
    )
    assert found[0]["payload"]["reason"] == "unknown_dataset"
    # The file is kept for the user to move, not silently deleted.
    assert minio_client().stat_object("conveyor-landing", key).size == len(content)


def test_poison_messages_end_in_the_dead_letter_topic_and_the_audit_log(auditor: httpx.Client):
    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=KAFKA)
        await producer.start()
        try:
            await producer.send_and_wait(
                "conveyor.objectstore.events", b"definitely not a cloudevent", key=b"poison-1"
            )
            bad_payload = {"bucket": "conveyor-landing"}  # 'key' missing
            await producer.send_and_wait(
                "conveyor.objectstore.events",
                json.dumps(bad_payload).encode(),
                key=b"poison-2",
                headers=[
                    ("ce_specversion", b"1.0"),
                    ("ce_id", b"poison-event-2"),
                    ("ce_source", b"/tests"),
                    ("ce_type", b"conveyor.objectstore.object_created.v1"),
                    ("ce_time", b"2026-01-01T00:00:00Z"),
                    ("content-type", b"application/json"),
                ],
            )
        finally:
            await producer.stop()

    asyncio.run(produce())

    def ingest_letters() -> list[dict]:
        # this test's two letters (other tests of the session dead-letter messages too)
        found = [
            r["payload"]
            for r in records(auditor, type="conveyor.dead_letter.v1")
            if r["payload"]["consumer_group"].startswith("conveyor-ingest")
            and (
                r["payload"]["original_event_id"] == "poison-event-2"
                or r["payload"]["original_value"] == "definitely not a cloudevent"
            )
        ]
        return found if len(found) >= 2 else []

    dead = eventually(ingest_letters, timeout=60)
    by_event = {p["original_event_id"]: p for p in dead}
    assert "ValidationError" in by_event["poison-event-2"]["error"]
    assert by_event["poison-event-2"]["original_topic"] == "conveyor.objectstore.events"
    garbage = by_event[None]
    assert "not a CloudEvent" in garbage["error"]
    assert garbage["original_value"] == "definitely not a cloudevent"
    # Audit cannot read the garbage either: it dead-letters it too, and records its own letter.
    eventually(
        lambda: [
            r
            for r in records(auditor, type="conveyor.dead_letter.v1")
            if r["payload"]["consumer_group"].startswith("conveyor-audit")
        ]
    )


async def _superuser(query: str, *args: object) -> object:
    dsn = PG_SUPERUSER_DSN.rsplit("/", 1)[0] + f"/{TEST_DB}"
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            # replica mode skips ordinary triggers: the bypass an attacker with superuser has
            await conn.execute("SET LOCAL session_replication_role = replica")
            return await conn.fetchval(query, *args)
    finally:
        await conn.close()


def test_audit_log_refuses_update_and_delete(uploader: httpx.Client, dataset: str):
    async def attempt(statement: str) -> str:
        conn = await asyncpg.connect(endpoints.postgres_url(TEST_DB))
        try:
            await conn.execute(statement)
        except asyncpg.PostgresError as exc:
            return str(exc)
        finally:
            await conn.close()
        return "allowed"

    assert "append-only" in asyncio.run(
        attempt("UPDATE audit.audit_records SET actor = 'mallory' WHERE seq = 1")
    )
    assert "append-only" in asyncio.run(attempt("DELETE FROM audit.audit_records WHERE seq = 1"))
    assert "append-only" in asyncio.run(attempt("TRUNCATE audit.audit_records"))


def test_tampering_with_an_audit_row_is_detected_by_verify(
    uploader: httpx.Client, auditor: httpx.Client, dataset: str
):
    response = uploader.post(
        f"/v1/datasets/{dataset}/assets", files=[("files", ("v.jpg", image()))]
    )
    asset_id = response.json()["items"][0]["id"]
    (record,) = eventually(lambda: timeline(auditor, asset_id))
    before = auditor.post("/v1/audit/verify").json()
    assert before["ok"] is True and before["records_checked"] >= record["seq"]

    original = record["actor"]
    asyncio.run(
        _superuser("UPDATE audit.audit_records SET actor = 'mallory' WHERE seq = $1", record["seq"])
    )
    try:
        after = auditor.post("/v1/audit/verify").json()
        assert after["ok"] is False
        assert after["first_broken"]["seq"] == record["seq"]
        assert after["first_broken"]["event_id"] == record["event_id"]
        assert "altered" in after["first_broken"]["reason"]
    finally:
        asyncio.run(
            _superuser(
                "UPDATE audit.audit_records SET actor = $2 WHERE seq = $1", record["seq"], original
            )
        )
    assert auditor.post("/v1/audit/verify").json()["ok"] is True


def test_audit_queries_filter_paginate_and_export_jsonl(
    uploader: httpx.Client, auditor: httpx.Client, dataset: str
):
    ids = []
    for _ in range(3):
        response = uploader.post(
            f"/v1/datasets/{dataset}/assets", files=[("files", ("q.jpg", image()))]
        )
        ids.append(response.json()["items"][0]["id"])
    for asset_id in ids:
        eventually(lambda a=asset_id: timeline(auditor, a))
    page = auditor.get(
        "/v1/audit/records",
        params={"actor": "test-uploader", "type": "conveyor.asset.ingested.v1", "limit": 2},
    ).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    assert all(r["actor"] == "test-uploader" for r in page["items"])
    nxt = auditor.get(
        "/v1/audit/records",
        params={"actor": "test-uploader", "limit": 2, "cursor": page["next_cursor"]},
    ).json()
    assert nxt["items"][0]["seq"] > page["items"][-1]["seq"]
    export = auditor.get(
        "/v1/audit/export", params={"subject": ids[1], "type": "conveyor.asset.ingested.v1"}
    )
    assert export.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert [r["subject"] for r in lines] == [ids[1]]
    assert auditor.get("/v1/audit/records", params={"cursor": "x"}).status_code == 400


def test_audit_api_needs_a_valid_key(audit_url: str):
    assert httpx.get(f"{audit_url}/v1/audit/records").status_code == 401
    forged = httpx.get(f"{audit_url}/v1/audit/records", headers={"X-API-Key": "cvk_nope"})
    assert forged.status_code == 401


def test_drops_made_while_ingest_is_down_are_picked_up_when_it_starts(
    services: dict, uploader: httpx.Client, dataset: str
):
    services["ingest"].stop()  # the store's notifications for these drops are lost
    client = minio_client()
    keys = [f"{dataset}/offline/{i}.png" for i in range(5)]
    for key in keys:
        content = image(ext=".png")
        client.put_object("conveyor-landing", key, io.BytesIO(content), len(content))
    services["ingest"].start()

    def listed() -> list[dict]:
        items = uploader.get(f"/v1/datasets/{dataset}/assets").json()["items"]
        return items if len(items) == len(keys) else []

    assets = eventually(listed, timeout=60)
    assert sorted(a["filename"] for a in assets) == sorted(k.rsplit("/", 1)[1] for k in keys)
    assert {a["source"] for a in assets} == {"objectstore"}
