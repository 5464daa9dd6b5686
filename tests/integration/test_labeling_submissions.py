"""The vendor webhook's use case in process on the real Postgres: every check, every refusal
recorded and nothing else changed, an accepted answer stored once with its event."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from services.labeling_dispatch.context import Labeling
from services.labeling_dispatch.domain.signatures import sign
from services.labeling_dispatch.models import (
    Annotation,
    Assignment,
    Job,
    KnownAsset,
    Ontology,
    OntologyVersion,
    RefusedRequest,
    Task,
    WebhookReceipt,
    outbox,
)
from services.labeling_dispatch.use_cases import submissions, vendor_access, vendors
from services.labeling_dispatch.use_cases.submissions import (
    AnswerBatcher,
    SubmissionAnswer,
    Webhook,
)
from shared.auth import Principal, Role
from shared.errors import ApiError

ADMIN = Principal("admin-key", "tester", Role.admin)
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
SPEC = {
    "classes": [
        {
            "name": "car",
            "shape": "bbox",
            "attributes": [
                {"name": "color", "type": "enum", "values": ["red", "blue"], "required": True}
            ],
        },
        {"name": "road", "shape": "polygon"},
    ]
}
CAR = {
    "class": "car",
    "type": "bbox",
    "bbox": {"x": 10, "y": 20, "width": 100, "height": 50},
    "attributes": {"color": "red"},
}


@pytest.fixture
def inbound(labeling: Labeling) -> Labeling:
    """Labeling's context with a small webhook body limit and empty in-process caches."""
    labeling.settings = labeling.settings.model_copy(update={"webhook_max_body_bytes": 4096})
    vendor_access.vendor_cache.forget()
    submissions.unauthenticated_refusals.buckets.clear()
    return labeling


class World:
    """A job with one ontology version, two vendors, and tasks dispatched to the first."""

    def __init__(self, labeling: Labeling) -> None:
        self.labeling = labeling
        self.vendor_id = uuid.uuid4()
        self.secret = ""
        self.key = ""
        self.other_id = uuid.uuid4()
        self.other_secret = ""
        self.other_key = ""
        self.job_id = uuid.uuid4()
        self.dataset_id = uuid.uuid4()

    async def build(self) -> World:
        vendor, creds = await vendors.create_vendor(
            self.labeling, ADMIN, name="acme", kind="webhook", url="http://127.0.0.1:9/h",
            capacity=50, batch_size=10,
        )  # fmt: skip
        other, other_creds = await vendors.create_vendor(
            self.labeling, ADMIN, name="globex", kind="webhook", url="http://127.0.0.1:9/g",
            capacity=50, batch_size=10,
        )  # fmt: skip
        self.vendor_id, self.secret, self.key = vendor.id, creds.secret, creds.api_key
        self.other_id, self.other_secret = other.id, other_creds.secret
        self.other_key = other_creds.api_key
        ontology_id = uuid.uuid4()
        async with self.labeling.units.begin() as uow:
            uow.session.add(
                Ontology(id=ontology_id, name=f"o-{ontology_id}", latest_version=1, created_by="t")
            )
            await uow.session.flush()
            uow.session.add(
                OntologyVersion(ontology_id=ontology_id, version=1, spec=SPEC, created_by="t")
            )
            uow.session.add(
                Job(
                    id=self.job_id, name="job", dataset_id=self.dataset_id,
                    ontology_id=ontology_id, ontology_version=1, overlap=1, gold_ratio=0.0,
                    priority="arrival", lease_seconds=3600, state="open", created_by="t",
                )
            )  # fmt: skip
        return self

    async def task(
        self, vendor_id: uuid.UUID | None = None, *, lease: timedelta = timedelta(hours=1)
    ) -> uuid.UUID:
        """A task dispatched to ``vendor_id`` (default: the first vendor), lease running."""
        vendor_id = vendor_id or self.vendor_id
        asset_id, task_id, delivery = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        now = datetime.now(UTC)
        async with self.labeling.units.begin() as uow:
            uow.session.add(
                KnownAsset(
                    id=asset_id, dataset_id=self.dataset_id, sha256="a" * 64,
                    media_type="image/png", width=640, height=480, state="cleaned",
                    traceparent=TRACEPARENT,
                )
            )  # fmt: skip
            uow.session.add(
                Task(
                    id=task_id, job_id=self.job_id, asset_id=asset_id, replica=0, gold=True,
                    state="dispatched", priority_score=1.0, vendor_id=vendor_id, attempt=0,
                    delivery_id=delivery, dispatched_at=now - timedelta(seconds=30),
                    lease_expires_at=now + lease, excluded_vendors=[],
                )
            )  # fmt: skip
            await uow.session.flush()
            uow.session.add(
                Assignment(
                    task_id=task_id, attempt=0, vendor_id=vendor_id, delivery_id=delivery,
                    outcome="open", dispatched_at=now - timedelta(seconds=30),
                    lease_expires_at=now + lease,
                )
            )  # fmt: skip
        return task_id


@pytest.fixture(params=["alone", "batched"])
async def world(
    inbound: Labeling, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[World]:
    """Every case twice: each request in its own unit of work, and through the batcher (whose
    batches must not fail but by a lost race)."""
    built = await World(inbound).build()
    if request.param == "alone":
        yield built
        return
    batcher = inbound.answers = AnswerBatcher(inbound)
    failures: list[Exception] = []
    write = batcher._write

    async def watched(batch: Any) -> Any:
        try:
            return await write(batch)
        except submissions._LostRace:
            raise
        except Exception as exc:
            failures.append(exc)
            raise

    monkeypatch.setattr(batcher, "_write", watched)
    batcher.start()
    try:
        yield built
    finally:
        await batcher.stop()
        inbound.answers = None
    assert failures == []


def body_of(*answers: tuple[uuid.UUID, list[Any]]) -> bytes:
    return json.dumps(
        {
            "annotations": [
                {"task_id": str(t), "annotator_id": "ann-7", "shapes": shapes}
                for t, shapes in answers
            ]
        }
    ).encode()


async def post(
    world: World,
    body: bytes,
    *,
    secret: str | None = None,
    delivery: str | None = "d-1",
    signed_at: float | None = None,
    signature: str | None = None,
    vendor_id: uuid.UUID | None = None,
) -> SubmissionAnswer:
    async def chunks() -> AsyncIterator[bytes]:
        yield body

    header = signature
    if header is None:
        header = sign(secret or world.secret, body, int(signed_at or time.time()))
    request = Webhook(
        vendor_id=vendor_id or world.vendor_id,
        chunks=chunks(),
        content_length=None,
        signature=header or None,
        delivery_id=delivery,
        client="127.0.0.1",
    )
    return await submissions.receive(world.labeling, request)


async def refused(world: World, body: bytes, **kwargs: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await post(world, body, **kwargs)
    return caught.value


async def count(labeling: Labeling, model: Any, *where: Any) -> int:
    async with labeling.units.read() as session:
        query = select(func.count()).select_from(model)
        return int((await session.execute(query.where(*where))).scalar_one())


async def events(labeling: Labeling, type_name: str) -> list[dict[str, Any]]:
    async with labeling.units.read() as session:
        rows = await session.execute(select(outbox.c.envelope))
    return [e for (e,) in rows if e["type"] == type_name]


async def state_of(labeling: Labeling, task_id: uuid.UUID) -> tuple[str, str]:
    async with labeling.units.read() as session:
        task = (await session.execute(select(Task.state).where(Task.id == task_id))).scalar_one()
        outcome = (
            await session.execute(select(Assignment.outcome).where(Assignment.task_id == task_id))
        ).scalar_one()
    return task, outcome


async def nothing_changed(world: World, *task_ids: uuid.UUID) -> None:
    labeling = world.labeling
    assert await count(labeling, Annotation) == 0
    assert await count(labeling, WebhookReceipt) == 0
    assert await events(labeling, "conveyor.annotation.submitted.v1") == []
    for task_id in task_ids:
        assert await state_of(labeling, task_id) == ("dispatched", "open")


async def refusals(labeling: Labeling) -> list[RefusedRequest]:
    async with labeling.units.read() as session:
        query = select(RefusedRequest).order_by(RefusedRequest.id)
        return list((await session.execute(query)).scalars())


async def test_a_valid_answer_is_stored_once_and_emitted_in_the_assets_trace(world: World) -> None:
    task_id = await world.task()
    answer = await post(world, body_of((task_id, [CAR])))
    assert answer.accepted == 1 and not answer.duplicate
    assert await state_of(world.labeling, task_id) == ("submitted", "answered")
    async with world.labeling.units.read() as session:
        (stored,) = (await session.execute(select(Annotation))).scalars()
    assert stored.id == answer.annotation_ids[0] and stored.annotator_id == "ann-7"
    assert stored.vendor_id == world.vendor_id and stored.delivery_id == "d-1"
    assert stored.shapes[0]["bbox"] == {"x": 10.0, "y": 20.0, "width": 100.0, "height": 50.0}
    assert stored.lead_time_seconds is not None and 29 < stored.lead_time_seconds < 120
    (event,) = await events(world.labeling, "conveyor.annotation.submitted.v1")
    assert event["traceparent"] == TRACEPARENT
    assert event["data"]["task_id"] == str(task_id) and event["data"]["gold"] is True
    assert await refusals(world.labeling) == []


async def test_a_replay_answers_the_first_answer_and_changes_nothing(world: World) -> None:
    task_id = await world.task()
    body = body_of((task_id, [CAR]))
    first = await post(world, body)
    again = await post(world, body)
    assert again.duplicate and again.annotation_ids == first.annotation_ids
    assert await count(world.labeling, Annotation) == 1
    assert len(await events(world.labeling, "conveyor.annotation.submitted.v1")) == 1
    (refusal,) = await refusals(world.labeling)
    assert (refusal.reason, refusal.status_code, refusal.task_id) == ("replayed", 200, task_id)
    (event,) = await events(world.labeling, "conveyor.annotation.refused.v1")
    assert event["data"]["reason"] == "replayed"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"secret": "forged"}, "invalid_signature"),
        ({"signed_offset": -600}, "signature_expired"),
        ({"signed_offset": 600}, "signature_expired"),
        ({"signature": ""}, "missing_signature"),
        ({"signature": "t=1,v2=zz"}, "invalid_signature"),
        ({"vendor_id": uuid.uuid4()}, "invalid_signature"),
    ],
)
async def test_unauthenticated_requests_are_401_recorded_and_change_nothing(
    world: World, kwargs: dict[str, Any], code: str
) -> None:
    task_id = await world.task()
    # a timestamp 10 minutes from the moment the request is signed, not from collection
    if "signed_offset" in kwargs:
        kwargs = {"signed_at": time.time() + kwargs["signed_offset"]}
    error = await refused(world, body_of((task_id, [CAR])), **kwargs)
    assert (error.status, error.code) == (401, code)
    await nothing_changed(world, task_id)
    (refusal,) = await refusals(world.labeling)
    assert (refusal.reason, refusal.status_code) == (code, 401)
    expected_vendor = None if "vendor_id" in kwargs else world.vendor_id
    assert refusal.vendor_id == expected_vendor
    (event,) = await events(world.labeling, "conveyor.annotation.refused.v1")
    assert event["data"]["reason"] == code


async def test_another_vendors_secret_is_refused(world: World) -> None:
    task_id = await world.task()
    error = await refused(world, body_of((task_id, [CAR])), secret=world.other_secret)
    assert (error.status, error.code) == (401, "invalid_signature")
    await nothing_changed(world, task_id)


async def test_a_disabled_vendor_is_answered_like_a_bad_signature(world: World) -> None:
    task_id = await world.task()
    await vendors.change_vendor(world.labeling, ADMIN, world.vendor_id, {"enabled": False})
    vendor_access.vendor_cache.forget()
    error = await refused(world, body_of((task_id, [CAR])))
    assert (error.status, error.code) == (401, "invalid_signature")
    await nothing_changed(world, task_id)


async def test_an_oversized_body_is_413_without_reading_past_the_limit(world: World) -> None:
    task_id = await world.task()
    body = body_of((task_id, [CAR] * 100))
    assert len(body) > world.labeling.settings.webhook_max_body_bytes
    error = await refused(world, body)
    assert (error.status, error.code) == (413, "payload_too_large")
    await nothing_changed(world, task_id)
    (refusal,) = await refusals(world.labeling)
    assert refusal.status_code == 413


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b'{"annotations": []}', b'{"annotations": [{"task_id": "x"}]}'],
)
async def test_a_malformed_payload_is_422_with_details(world: World, body: bytes) -> None:
    task_id = await world.task()
    error = await refused(world, body)
    assert (error.status, error.code) == (422, "invalid_payload")
    assert error.details["errors"]
    await nothing_changed(world, task_id)
    (refusal,) = await refusals(world.labeling)
    assert refusal.status_code == 422 and refusal.vendor_id == world.vendor_id


async def test_a_missing_delivery_id_is_refused(world: World) -> None:
    task_id = await world.task()
    error = await refused(world, body_of((task_id, [CAR])), delivery=None)
    assert (error.status, error.code) == (422, "missing_delivery_id")
    await nothing_changed(world, task_id)


async def test_another_vendors_task_is_404_like_an_unknown_one(world: World) -> None:
    mine = await world.task()
    theirs = await world.task(world.other_id)
    error = await refused(world, body_of((mine, [CAR]), (theirs, [CAR])))
    unknown = await refused(world, body_of((uuid.uuid4(), [CAR])), delivery="d-2")
    assert (error.status, error.code) == (404, "task_not_found") == (unknown.status, unknown.code)
    assert error.details == {"task_ids": [str(theirs)]}
    await nothing_changed(world, mine)
    assert await state_of(world.labeling, theirs) == ("dispatched", "open")
    assert (await refusals(world.labeling))[0].task_id == theirs


async def test_every_bad_annotation_is_listed_and_nothing_is_stored(world: World) -> None:
    first, second = await world.task(), await world.task()
    bad = [
        {"class": "truck", "type": "bbox", "bbox": {"x": 1, "y": 1, "width": 2, "height": 2}},
        {"class": "car", "type": "polygon", "points": [[0, 0], [1, 0], [1, 1]]},
        {"class": "car", "type": "bbox", "bbox": {"x": 1, "y": 1, "width": 2, "height": 2}},
        {**CAR, "bbox": {"x": 600, "y": 400, "width": 100, "height": 100}},
        {**CAR, "bbox": {"x": 1, "y": 1, "width": 0, "height": 5}},
        {"class": "road", "type": "polygon", "points": [[0, 0], [10, 10], [10, 0], [0, 10]]},
        {**CAR, "attributes": {"color": "green"}},
        {**CAR, "attributes": {"color": "red", "size": 3}},
    ]
    error = await refused(world, body_of((first, [CAR]), (second, bad)))
    assert (error.status, error.code) == (422, "invalid_annotation")
    problems = error.details["problems"]
    assert {p["annotation"] for p in problems} == {1}
    assert {p["task_id"] for p in problems} == {str(second)}
    codes = {p["code"] for p in problems}
    assert {
        "unknown_class",
        "wrong_shape",
        "missing_attribute",
        "out_of_bounds",
        "degenerate",
        "self_intersecting",
        "bad_attribute_value",
        "unknown_attribute",
    } <= codes
    assert {p["index"] for p in problems} == set(range(len(bad)))
    await nothing_changed(world, first, second)
    (refusal,) = await refusals(world.labeling)
    assert refusal.task_id == second and refusal.problems == problems


async def test_a_late_answer_after_the_lease_is_409(world: World) -> None:
    lapsed = await world.task(lease=timedelta(seconds=-1))
    error = await refused(world, body_of((lapsed, [CAR])))
    assert (error.status, error.code) == (409, "task_expired")
    await nothing_changed(world, lapsed)
    # ...and once the dispatcher has expired it too
    async with world.labeling.units.begin() as uow:
        await uow.session.execute(
            update(Assignment).where(Assignment.task_id == lapsed).values(outcome="expired")
        )
    error = await refused(world, body_of((lapsed, [CAR])), delivery="d-2")
    assert (error.status, error.code) == (409, "task_expired")
    assert [r.reason for r in await refusals(world.labeling)] == ["task_expired"] * 2


async def test_a_second_answer_to_a_task_is_409(world: World) -> None:
    task_id = await world.task()
    await post(world, body_of((task_id, [CAR])))
    error = await refused(world, body_of((task_id, [CAR])), delivery="d-2")
    assert (error.status, error.code) == (409, "task_already_answered")
    assert await count(world.labeling, Annotation) == 1


async def test_a_flood_of_forged_requests_is_recorded_only_in_part(world: World) -> None:
    task_id = await world.task()
    for n in range(40):
        await refused(world, body_of((task_id, [CAR])), secret="forged", delivery=f"f-{n}")
    written = await refusals(world.labeling)
    assert 0 < len(written) <= submissions.UNAUTHENTICATED_BURST + 1
    await nothing_changed(world, task_id)


async def test_vendor_views_show_only_own_open_tasks(world: World) -> None:
    mine, theirs = await world.task(), await world.task(world.other_id)
    vendor = await vendor_access.vendor_by_key(world.labeling, world.key)
    page = await vendor_access.open_tasks(world.labeling, vendor, 10, None)
    assert [t.task_id for t in page.items] == [mine]
    shown = page.items[0].model_dump()
    assert "gold" not in str(shown.keys()) and "asset_id" not in shown
    assert shown["image"]["url"].startswith("http") and shown["image"]["width"] == 640
    assert (await vendor_access.open_task(world.labeling, vendor, mine)).task_id == mine
    with pytest.raises(ApiError) as other:
        await vendor_access.open_task(world.labeling, vendor, theirs)
    assert other.value.status == 404
    with pytest.raises(ApiError) as bad_key:
        await vendor_access.vendor_by_key(world.labeling, "cvv_nope")
    assert bad_key.value.status == 401
    await post(world, body_of((mine, [CAR])))
    assert (await vendor_access.open_tasks(world.labeling, vendor, 10, None)).items == []


async def test_people_see_a_tasks_annotations_and_refusals(world: World) -> None:
    task_id = await world.task()
    await refused(world, body_of((task_id, [{"class": "truck"}])), delivery="d-0")
    await post(world, body_of((task_id, [CAR])))
    page = await submissions.annotations_of_task(world.labeling, ADMIN, task_id, 10, None)
    assert [a.annotator_id for a in page.items] == ["ann-7"]
    refused_page = await submissions.refusals_of_task(world.labeling, ADMIN, task_id, 10, None)
    assert [r.reason for r in refused_page.items] == ["invalid_annotation"]
    scoped = Principal("k", "scoped", Role.viewer, frozenset({str(uuid.uuid4())}))
    with pytest.raises(ApiError) as hidden:
        await submissions.annotations_of_task(world.labeling, scoped, task_id, 10, None)
    assert hidden.value.status == 404


@pytest.fixture
async def batched(world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    """The batcher's cases; the test's sessions share one connection, so they take turns."""
    if world.labeling.answers is None:
        pytest.skip("about the batcher")
    maker = world.labeling.units.sessions
    turn = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def one_at_a_time() -> AsyncIterator[Any]:
        async with turn, maker() as session:
            yield session

    monkeypatch.setattr(world.labeling.units, "sessions", one_at_a_time)
    return world


async def queue_together(world: World, *requests: Coroutine[Any, Any, SubmissionAnswer]) -> Any:
    """Start the requests with the batcher's worker held, so all of them are queued (judged)
    before it takes its first batch; returns the worker's release."""
    batcher = world.labeling.answers
    assert batcher is not None
    await batcher.stop()
    held = asyncio.Event()

    async def holding() -> None:
        await held.wait()

    batcher._worker = asyncio.create_task(holding())
    running = [asyncio.create_task(r) for r in requests]
    async with asyncio.timeout(10):
        while batcher._queue.qsize() < len(requests):
            await asyncio.sleep(0.01)

    async def release() -> list[Any]:
        batcher.start()
        held.set()
        return list(await asyncio.gather(*running, return_exceptions=True))

    return release


def batches(world: World, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int | None]]:
    """For each batch written: its size and how many it committed (None: rolled back)."""
    seen: list[tuple[int, int | None]] = []
    batcher = world.labeling.answers
    assert batcher is not None
    write = batcher._write

    async def recording(batch: Any) -> Any:
        seen.append((len(batch), None))
        answers = await write(batch)
        seen[-1] = (len(batch), len(answers))
        return answers

    monkeypatch.setattr(batcher, "_write", recording)
    return seen


async def test_concurrent_answers_are_committed_together_each_with_its_own_answer(
    batched: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = batched
    task_ids = [await world.task() for _ in range(5)]
    bodies = [body_of((t, [CAR])) for t in task_ids]
    seen = batches(world, monkeypatch)
    release = await queue_together(
        world,
        *(post(world, body, delivery=f"d-{i}") for i, body in enumerate(bodies)),
        post(world, bodies[0], delivery="d-0"),  # the same delivery: a replay
    )
    answers = await release()
    assert seen == [(6, 5)]  # one batch; the replay was left to its own unit of work
    first, replay = answers[0], answers[5]
    assert not first.duplicate and replay.duplicate
    assert replay.annotation_ids == first.annotation_ids
    async with world.labeling.units.read() as session:
        stored = {a.id: a for a in (await session.execute(select(Annotation))).scalars()}
    assert len(stored) == 5
    for i, (task_id, answer) in enumerate(zip(task_ids, answers[:5], strict=True)):
        (annotation_id,) = answer.annotation_ids
        assert stored[annotation_id].task_id == task_id
        assert stored[annotation_id].delivery_id == f"d-{i}"
        assert await state_of(world.labeling, task_id) == ("submitted", "answered")
    submitted = await events(world.labeling, "conveyor.annotation.submitted.v1")
    assert sorted(e["data"]["task_id"] for e in submitted) == sorted(map(str, task_ids))
    assert all(e["traceparent"] == TRACEPARENT for e in submitted)
    assert await count(world.labeling, WebhookReceipt) == 5
    (refusal,) = await refusals(world.labeling)
    assert (refusal.reason, refusal.status_code) == ("replayed", 200)


async def test_a_batch_with_a_lost_race_still_answers_the_others(
    batched: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = batched
    task_ids = [await world.task() for _ in range(3)]
    lost = task_ids[2]
    seen = batches(world, monkeypatch)
    release = await queue_together(
        world,
        *(post(world, body_of((t, [CAR])), delivery=f"d-{i}") for i, t in enumerate(task_ids)),
    )
    # judged open, then expired before the batch commits
    async with world.labeling.units.begin() as uow:
        await uow.session.execute(
            update(Assignment).where(Assignment.task_id == lost).values(outcome="expired")
        )
    results = await release()
    assert seen == [(3, None)]  # the batch, rolled back; then each request alone
    for task_id, result in zip(task_ids[:2], results[:2], strict=True):
        assert isinstance(result, SubmissionAnswer) and result.accepted == 1
        assert not result.duplicate
        assert await state_of(world.labeling, task_id) == ("submitted", "answered")
    error = results[2]
    assert isinstance(error, ApiError)
    assert (error.status, error.code) == (409, "task_already_answered")
    assert await state_of(world.labeling, lost) == ("dispatched", "expired")
    assert await count(world.labeling, Annotation) == 2
    assert await count(world.labeling, WebhookReceipt) == 2
    assert len(await events(world.labeling, "conveyor.annotation.submitted.v1")) == 2
    assert [(r.reason, r.task_id) for r in await refusals(world.labeling)] == [
        ("task_already_answered", lost)
    ]
