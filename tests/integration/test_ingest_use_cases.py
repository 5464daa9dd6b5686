"""Ingest's use cases in-process on the real Postgres and object store (no HTTP, no Kafka).

Each test's writes are rolled back when it ends (see the ``sessions`` fixture); blobs it puts in
the object store are content-addressed, so leaving them there is harmless.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest import repository as repo
from services.ingest.context import SOURCE, Ingest
from services.ingest.domain import Inspected, LandingObject
from services.ingest.models import Asset, Dataset, inbox, outbox
from services.ingest.schemas import ApiKeyCreate, DatasetCreate, DatasetOut
from services.ingest.use_cases import api_keys, datasets, drops, frames, uploads
from services.ingest.use_cases.principals import StoredKeys
from services.ingest.use_cases.registration import (
    UploadRegistration,
    emit_ingested,
    new_asset,
    register_uploads,
)
from shared.auth import Principal, Role
from shared.db import session_factory
from shared.errors import ApiError
from shared.events import (
    API_KEY_CREATED,
    API_KEY_REVOKED,
    ASSET_INGESTED,
    DATASET_CREATED,
    DROP_REJECTED,
    FRAME_SAMPLED,
    OBJECT_CREATED,
    Envelope,
    EventType,
    FrameSampledV1,
    ObjectCreatedV1,
    Payload,
)
from shared.routing import Event
from shared.storage import LANDING_BUCKET, RAW_BUCKET, content_address
from shared.uow import UnitsOfWork
from tests.media import image

P = TypeVar("P", bound=Payload)

ALICE = Principal(key_id="k-alice", name="alice", role=Role.admin)


async def emitted(ingest: Ingest, event_type: EventType[Any]) -> list[dict[str, Any]]:
    """The envelopes of ``event_type`` in ingest's outbox, oldest first."""
    async with ingest.units.read() as session:
        rows = await session.execute(
            select(outbox.c.envelope)
            .where(outbox.c.envelope["type"].astext == event_type.name)
            .order_by(outbox.c.id)
        )
        return [envelope for (envelope,) in rows]


async def inbox_rows(ingest: Ingest) -> int:
    async with ingest.units.read() as session:
        count = await session.execute(select(func.count()).select_from(inbox))
        return int(count.scalar_one())


async def new_dataset(ingest: Ingest) -> DatasetOut:
    slug = f"uc-{uuid.uuid4().hex[:10]}"
    return await datasets.create_dataset(ingest, ALICE, DatasetCreate(slug=slug, name=slug))


def delivered(payload: P, event_type: EventType[P]) -> Event[P]:
    """``payload`` as the consumer hands it to a route: in an envelope, with its topic."""
    envelope = Envelope(
        id=str(uuid.uuid4()),
        source="/test",
        type=event_type.name,
        time=datetime.now(UTC),
        data=payload.model_dump(mode="json"),
    )
    return Event(envelope, event_type.topic.name, payload)


async def test_create_dataset_emits_dataset_created_and_a_taken_slug_is_409(
    ingest: Ingest,
) -> None:
    created = await new_dataset(ingest)
    assert created.created_by == "alice"
    (event,) = await emitted(ingest, DATASET_CREATED)
    assert event["subject"] == str(created.id)
    assert event["source"] == SOURCE and event["actor"] == "alice"
    assert event["data"]["slug"] == created.slug
    with pytest.raises(ApiError) as caught:
        await datasets.create_dataset(ingest, ALICE, DatasetCreate(slug=created.slug, name="x"))
    assert (caught.value.status, caught.value.code) == (409, "dataset_exists")
    assert len(await emitted(ingest, DATASET_CREATED)) == 1
    assert (await datasets.get_dataset(ingest, ALICE, created.slug)).id == created.id


async def test_an_upload_registers_the_asset_once_and_the_same_bytes_again_are_a_duplicate(
    ingest: Ingest,
) -> None:
    dataset = await new_dataset(ingest)
    content = image(ext=".png")
    sha = hashlib.sha256(content).hexdigest()

    async def send(name: str) -> list[Any]:
        incoming = [uploads.IncomingFile(name, io.BytesIO(content))]
        return await uploads.upload(ingest, ALICE, dataset.slug, incoming, ["day", "lot-7"])

    (first,) = await send("shot.png")
    assert (first.sha256, first.media_type, first.size_bytes) == (sha, "image/png", len(content))
    assert first.duplicate is False and first.tags == ["day", "lot-7"]
    async with ingest.units.read() as session:  # the row as stored, not the answer's copy
        stored = await repo.asset_by_hash(session, dataset.id, sha)
    assert stored is not None and stored.id == first.id
    assert (stored.filename, stored.tags, stored.size_bytes) == (
        "shot.png",
        ["day", "lot-7"],
        len(content),
    )
    assert (stored.source, stored.uploaded_by, stored.parent_asset_id) == ("upload", "alice", None)
    assert stored.created_at.tzinfo is not None
    assert await ingest.store.stat(RAW_BUCKET, content_address(sha)) is not None
    (event,) = await emitted(ingest, ASSET_INGESTED)
    assert event["subject"] == str(first.id)
    assert event["data"]["dataset_slug"] == dataset.slug
    assert event["data"]["object_key"] == content_address(sha)

    (second,) = await send("renamed.png")
    assert (second.id, second.duplicate) == (first.id, True)
    assert len(await emitted(ingest, ASSET_INGESTED)) == 1


async def test_an_upload_with_a_file_that_is_not_media_stores_nothing(ingest: Ingest) -> None:
    dataset = await new_dataset(ingest)
    incoming = [
        uploads.IncomingFile("ok.jpg", io.BytesIO(image())),
        uploads.IncomingFile("notes.txt", io.BytesIO(b"just text, not a picture")),
    ]
    with pytest.raises(ApiError) as caught:
        await uploads.upload(ingest, ALICE, dataset.slug, incoming, [])
    assert (caught.value.status, caught.value.code) == (415, "unsupported_media_type")
    assert await emitted(ingest, ASSET_INGESTED) == []


async def test_a_drop_into_an_unknown_dataset_is_rejected_once_however_often_it_arrives(
    ingest: Ingest,
) -> None:
    key = f"no-such-dataset-{uuid.uuid4().hex[:8]}/cat.jpg"
    event = delivered(ObjectCreatedV1(bucket=LANDING_BUCKET, key=key), OBJECT_CREATED)
    for _ in range(2):
        await drops.ingest_landing_object(ingest, event)
    (rejected,) = await emitted(ingest, DROP_REJECTED)
    assert rejected["subject"] == f"s3://{LANDING_BUCKET}/{key}"
    assert rejected["actor"] == "objectstore"
    assert rejected["data"]["reason"] == "unknown_dataset"
    assert await inbox_rows(ingest) == 1


async def test_a_drop_into_a_dataset_becomes_its_asset_and_leaves_the_landing_bucket(
    ingest: Ingest,
) -> None:
    dataset = await new_dataset(ingest)
    content = image()
    key = f"{dataset.slug}/sub/cat.jpg"
    await ingest.store.put_stream(
        LANDING_BUCKET, key, io.BytesIO(content), len(content), "image/jpeg"
    )
    try:
        event = delivered(ObjectCreatedV1(bucket=LANDING_BUCKET, key=key), OBJECT_CREATED)
        for _ in range(2):
            await drops.ingest_landing_object(ingest, event)
        (ingested,) = await emitted(ingest, ASSET_INGESTED)
        assert ingested["data"]["source"] == "objectstore"
        assert ingested["data"]["filename"] == "cat.jpg"
        assert ingested["data"]["sha256"] == hashlib.sha256(content).hexdigest()
        assert await ingest.store.stat(LANDING_BUCKET, key) is None
    finally:
        await ingest.store.remove(LANDING_BUCKET, key)


async def test_a_store_notification_is_recorded_once_and_other_buckets_are_ignored(
    ingest: Ingest,
) -> None:
    obj = LandingObject(LANDING_BUCKET, "cars/a.jpg", 10, "etag-1", "1700000000")
    assert await drops.record_store_notification(ingest, obj)
    assert await drops.record_store_notification(ingest, obj)  # the store may repeat itself
    other = LandingObject(RAW_BUCKET, "cars/a.jpg", 10, "etag-1")
    assert not await drops.record_store_notification(ingest, other)
    (created,) = await emitted(ingest, OBJECT_CREATED)
    assert created["data"]["key"] == "cars/a.jpg"
    assert created["data"]["detected_by"] == "notification"


async def test_a_sampled_frame_becomes_a_frame_asset_of_the_video_dataset_once(
    ingest: Ingest,
) -> None:
    dataset = await new_dataset(ingest)
    video_id = uuid.uuid4()
    frame = FrameSampledV1(
        video_asset_id=video_id,
        dataset_id=dataset.id,
        dataset_slug=dataset.slug,
        frame_index=12,
        frame_time_seconds=1.5,
        bucket="conveyor-derived",
        object_key=f"frames/{video_id}/12.jpg",
        sha256="ab" * 32,
        size_bytes=1234,
    )
    event = delivered(frame, FRAME_SAMPLED)
    for _ in range(2):
        await frames.register_frame(ingest, event)
    (ingested,) = await emitted(ingest, ASSET_INGESTED)
    assert ingested["actor"] == "clean"
    assert ingested["data"]["filename"] == "frame-000012-1.500s.jpg"
    assert ingested["data"]["parent_asset_id"] == str(video_id)
    async with ingest.units.read() as session:
        asset = (await session.execute(select(Asset))).scalar_one()
    assert (asset.source, asset.bucket, asset.frame_time_seconds) == (
        "frame",
        "conveyor-derived",
        1.5,
    )


async def test_an_api_key_is_issued_and_revoked_with_an_event_each(ingest: Ingest) -> None:
    created = await api_keys.create_api_key(
        ingest, ALICE, ApiKeyCreate(name="robot", role=Role.uploader)
    )
    assert created.key and created.role is Role.uploader
    (issued,) = await emitted(ingest, API_KEY_CREATED)
    assert issued["subject"] == str(created.id)
    assert "key" not in issued["data"] and issued["data"]["role"] == "uploader"
    assert [k.id for k in await api_keys.list_api_keys(ingest)] == [created.id]

    await api_keys.revoke_api_key(ingest, ALICE, created.id)
    (revoked,) = await emitted(ingest, API_KEY_REVOKED)
    assert revoked["data"] == {"key_id": str(created.id), "revoked_by": "alice"}
    with pytest.raises(ApiError) as caught:
        await api_keys.revoke_api_key(ingest, ALICE, created.id)
    assert (caught.value.status, caught.value.code) == (404, "api_key_not_found")
    assert len(await emitted(ingest, API_KEY_REVOKED)) == 1


async def test_a_stored_key_resolves_to_its_principal_until_it_is_revoked(ingest: Ingest) -> None:
    resolver = StoredKeys(ingest)
    created = await api_keys.create_api_key(
        ingest, ALICE, ApiKeyCreate(name="viewer-bot", role=Role.viewer)
    )
    assert await resolver.resolve(created.key) == Principal(
        key_id=str(created.id), name="viewer-bot", role=Role.viewer
    )
    assert await resolver.resolve("cvk_not_a_key_anyone_was_given") is None
    await api_keys.revoke_api_key(ingest, ALICE, created.id)
    assert await resolver.resolve(created.key) is None


async def test_an_empty_drop_is_rejected_as_empty_and_stays_in_the_landing_bucket(
    ingest: Ingest,
) -> None:
    dataset = await new_dataset(ingest)
    key = f"{dataset.slug}/empty.jpg"
    await ingest.store.put_stream(LANDING_BUCKET, key, io.BytesIO(b""), 0, "image/jpeg")
    try:
        event = delivered(ObjectCreatedV1(bucket=LANDING_BUCKET, key=key), OBJECT_CREATED)
        await drops.ingest_landing_object(ingest, event)
        (rejected,) = await emitted(ingest, DROP_REJECTED)
        assert rejected["data"]["reason"] == "empty"
        assert await ingest.store.stat(LANDING_BUCKET, key) is not None
    finally:
        await ingest.store.remove(LANDING_BUCKET, key)


async def test_requests_registered_together_keep_their_own_tags_and_share_repeated_bytes(
    ingest: Ingest,
) -> None:
    """One group-commit flush of three requests: each row keeps its request's tags; bytes
    that two requests (or one request twice) carry become one asset, the others come back as
    that asset marked duplicate; one event per new asset."""
    created = await new_dataset(ingest)
    dataset = await datasets.dataset_for(ingest, created.slug, ALICE)
    a, b, c = (f"{n:064x}" for n in (uuid.uuid4().int, uuid.uuid4().int, uuid.uuid4().int))

    def files(*hashes: str) -> list[tuple[Inspected, str]]:
        return [(Inspected("image/jpeg", 10 + i, h), f"{h[:6]}.jpg") for i, h in enumerate(hashes)]

    batch = [
        UploadRegistration(dataset, files(a, b), "alice", ["first"], None),
        UploadRegistration(dataset, files(b, c), "bob", [], None),
        UploadRegistration(dataset, files(c), "carol", ["third", "x-2"], None),
    ]
    first, second, third = await register_uploads(ingest, batch)
    assert isinstance(first, dict) and isinstance(second, dict) and isinstance(third, dict)
    assert (first[a].duplicate, first[b].duplicate) == (False, False)
    assert (second[b].id, second[b].duplicate) == (first[b].id, True)
    assert second[c].duplicate is False
    assert (third[c].id, third[c].duplicate) == (second[c].id, True)
    async with ingest.units.read() as session:
        rows = await repo.assets_by_hashes(session, dataset.id, [a, b, c])
    assert {h: (r.tags, r.uploaded_by) for h, r in rows.items()} == {
        a: (["first"], "alice"),
        b: (["first"], "alice"),
        c: ([], "bob"),
    }
    events = await emitted(ingest, ASSET_INGESTED)
    assert sorted(e["subject"] for e in events) == sorted(str(rows[h].id) for h in (a, b, c))


async def test_a_single_statement_write_commits_with_its_statement_and_no_transaction(
    usecase_engine: AsyncEngine,
) -> None:
    """On the service's own engine (not the tests' rolled-back connection) the assets and
    their events are committed by the one statement: another connection sees both before the
    block ends, and the session never opened a transaction. The rows are removed after."""
    sessions = session_factory(usecase_engine)
    units = UnitsOfWork(sessions, outbox=outbox, inbox=inbox, source=SOURCE, consumer="t")
    async with units.begin() as uow:
        dataset = Dataset(
            id=uuid.uuid4(), slug=f"single-{uuid.uuid4().hex[:8]}", name="s", created_by="t"
        )
        uow.session.add(dataset)
    fresh = [
        new_asset(
            dataset,
            Inspected("image/png", 5, f"{uuid.uuid4().int:064x}"),
            "a.png",
            uploaded_by="alice",
            source="upload",
            tags=[],
        )
        for _ in range(2)
    ]
    try:
        async with units.single_statement() as write:
            for asset in fresh:
                emit_ingested(write, asset, dataset)
            inserted = await repo.insert_assets_skipping_known(write, fresh)
            assert inserted == {a.id for a in fresh}
            pid = (await write.session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            async with sessions() as other:
                state = await other.execute(
                    text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
                )
                assert state.scalar_one() == "idle"  # not "idle in transaction"
                seen = await other.execute(
                    select(outbox.c.envelope["subject"].astext).where(
                        outbox.c.envelope["subject"].astext.in_([str(a.id) for a in fresh])
                    )
                )
                assert sorted(seen.scalars()) == sorted(str(a.id) for a in fresh)
                stored = await repo.assets_by_hashes(other, dataset.id, [a.sha256 for a in fresh])
                assert {a.id for a in stored.values()} == inserted
    finally:
        async with units.begin() as uow:
            subjects = [str(a.id) for a in fresh]
            await uow.session.execute(
                delete(outbox).where(outbox.c.envelope["subject"].astext.in_(subjects))
            )
            await uow.session.execute(delete(Asset).where(Asset.dataset_id == dataset.id))
            await uow.session.execute(delete(Dataset).where(Dataset.id == dataset.id))
