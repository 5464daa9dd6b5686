"""QC's rework requests in labeling-dispatch, in process on the real Postgres: answered tasks go
back into the queue with the reviewer's comment, for the vendor that answered them or the one
named, exactly once, and the dispatcher sends them with the comment."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from services.labeling_dispatch.context import Labeling
from services.labeling_dispatch.domain.batches import rework_vendor
from services.labeling_dispatch.models import (
    Assignment,
    Delivery,
    Job,
    JobVendor,
    KnownAsset,
    Ontology,
    OntologyVersion,
    Task,
    outbox,
)
from services.labeling_dispatch.use_cases import dispatching, vendors
from services.labeling_dispatch.use_cases.rework import send_back_for_rework
from shared.auth import Principal, Role
from shared.events import (
    ANNOTATION_REWORK_REQUESTED,
    QC_EVENTS,
    AnnotationReworkRequestedV1,
    Envelope,
)
from shared.routing import Event

ADMIN = Principal("admin-key", "tester", Role.admin)
SPEC = {"classes": [{"name": "car", "shape": "bbox"}]}


class World:
    """A job with three vendors (two working on it, a third on another job) and answered tasks."""

    def __init__(self, labeling: Labeling) -> None:
        self.labeling = labeling
        self.job_id = uuid.uuid4()
        self.dataset_id = uuid.uuid4()
        self.vendors: list[uuid.UUID] = []
        self.outsider = uuid.uuid4()

    async def build(self, *, job_vendors: int = 2) -> World:
        for name in ("acme", "globex", "initech"):
            vendor, _ = await vendors.create_vendor(
                self.labeling, ADMIN, name=f"{name}-{self.job_id.hex[:6]}", kind="webhook",
                url="http://127.0.0.1:9/h", capacity=50, batch_size=10,
            )  # fmt: skip
            self.vendors.append(vendor.id)
        self.outsider = self.vendors.pop()
        self.vendors = self.vendors[:job_vendors]
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
                    ontology_id=ontology_id, ontology_version=1, overlap=2, gold_ratio=0.0,
                    priority="arrival", lease_seconds=3600, state="open", created_by="t",
                )
            )  # fmt: skip
            await uow.session.flush()
            for vendor_id in self.vendors:
                uow.session.add(JobVendor(job_id=self.job_id, vendor_id=vendor_id))
        return self

    async def asset(self) -> uuid.UUID:
        asset_id = uuid.uuid4()
        async with self.labeling.units.begin() as uow:
            uow.session.add(
                KnownAsset(
                    id=asset_id, dataset_id=self.dataset_id, sha256="a" * 64,
                    media_type="image/png", width=640, height=480, state="cleaned",
                )
            )  # fmt: skip
        return asset_id

    async def task(
        self,
        asset_id: uuid.UUID,
        vendor_id: uuid.UUID,
        *,
        replica: int = 0,
        state: str = "submitted",
    ) -> uuid.UUID:
        """A task of the asset answered by ``vendor_id`` (or, for another state, held by it)."""
        task_id, delivery = uuid.uuid4(), uuid.uuid4()
        now = datetime.now(UTC)
        async with self.labeling.units.begin() as uow:
            uow.session.add(
                Task(
                    id=task_id, job_id=self.job_id, asset_id=asset_id, replica=replica,
                    gold=False, state=state, priority_score=1.0, vendor_id=vendor_id, attempt=0,
                    delivery_id=delivery, dispatched_at=now - timedelta(minutes=5),
                    lease_expires_at=None if state == "submitted" else now + timedelta(hours=1),
                    submitted_at=now if state == "submitted" else None, excluded_vendors=[],
                )
            )  # fmt: skip
            await uow.session.flush()
            uow.session.add(
                Assignment(
                    task_id=task_id, attempt=0, vendor_id=vendor_id, delivery_id=delivery,
                    outcome="answered" if state == "submitted" else "open",
                    dispatched_at=now - timedelta(minutes=5),
                )
            )  # fmt: skip
        return task_id

    def request(
        self,
        asset_id: uuid.UUID,
        *task_ids: uuid.UUID,
        vendor_id: uuid.UUID | None = None,
        event_id: str | None = None,
    ) -> Event[AnnotationReworkRequestedV1]:
        payload = AnnotationReworkRequestedV1(
            job_id=self.job_id, asset_id=asset_id, dataset_id=self.dataset_id,
            task_ids=list(task_ids), comment="the left car is missing", requested_by="rita",
            vendor_id=vendor_id, round=1,
        )  # fmt: skip
        envelope = Envelope(
            id=event_id or str(uuid.uuid4()),
            source="/conveyor/qc",
            type=ANNOTATION_REWORK_REQUESTED.name,
            time=datetime.now(UTC),
            subject=str(asset_id),
            actor="rita",
            data=payload.model_dump(mode="json"),
        )
        return Event(envelope, QC_EVENTS.name, payload)

    async def fetch(self, task_id: uuid.UUID) -> Task:
        async with self.labeling.units.read() as session:
            task = await session.get(Task, task_id)
        assert task is not None
        return task

    async def rework_events(self) -> list[dict[str, object]]:
        async with self.labeling.units.read() as session:
            rows = (await session.execute(select(outbox).order_by(outbox.c.id))).all()
        return [
            r.envelope["data"]
            for r in rows
            if r.envelope["type"] == "conveyor.task.rework_sent.v1"
            and r.envelope["data"]["job_id"] == str(self.job_id)
        ]


@pytest.fixture
async def world(labeling: Labeling) -> World:
    return await World(labeling).build()


async def test_an_answered_task_goes_back_to_its_vendor_with_the_comment(world: World) -> None:
    acme, globex = world.vendors
    asset = await world.asset()
    task_id = await world.task(asset, acme)
    world.labeling.wake_dispatcher.clear()

    await send_back_for_rework(world.labeling, world.request(asset, task_id))

    task = await world.fetch(task_id)
    assert (task.state, task.attempt, task.rework_comment) == (
        "queued",
        1,
        "the left car is missing",
    )
    assert task.excluded_vendors == [globex]
    assert task.vendor_id is None and task.delivery_id is None
    assert world.labeling.wake_dispatcher.is_set()
    assert await world.rework_events() == [
        {
            "task_id": str(task_id),
            "job_id": str(world.job_id),
            "asset_id": str(asset),
            "vendor_id": str(acme),
            "comment": "the left car is missing",
            "requested_by": "rita",
        }
    ]


async def test_a_redelivered_request_changes_nothing(world: World) -> None:
    asset = await world.asset()
    task_id = await world.task(asset, world.vendors[0])
    request = world.request(asset, task_id)

    await send_back_for_rework(world.labeling, request)
    await send_back_for_rework(world.labeling, request)

    assert (await world.fetch(task_id)).attempt == 1
    assert len(await world.rework_events()) == 1


async def test_tasks_not_submitted_or_of_another_job_are_skipped(world: World) -> None:
    acme = world.vendors[0]
    asset = await world.asset()
    held = await world.task(asset, acme, state="dispatched")
    stranger = uuid.uuid4()

    await send_back_for_rework(world.labeling, world.request(asset, held, stranger))

    task = await world.fetch(held)
    assert (task.state, task.attempt, task.rework_comment) == ("dispatched", 0, None)
    assert await world.rework_events() == []


async def test_a_second_request_for_a_task_already_sent_back_is_skipped(world: World) -> None:
    asset = await world.asset()
    task_id = await world.task(asset, world.vendors[0])
    await send_back_for_rework(world.labeling, world.request(asset, task_id))

    await send_back_for_rework(world.labeling, world.request(asset, task_id))

    assert (await world.fetch(task_id)).attempt == 1
    assert len(await world.rework_events()) == 1


async def test_a_named_vendor_of_the_job_gets_the_task(world: World) -> None:
    acme, globex = world.vendors
    asset = await world.asset()
    task_id = await world.task(asset, acme)

    await send_back_for_rework(world.labeling, world.request(asset, task_id, vendor_id=globex))

    assert (await world.fetch(task_id)).excluded_vendors == [acme]
    (event,) = await world.rework_events()
    assert event["vendor_id"] == str(globex)


async def test_a_named_vendor_outside_the_job_means_the_vendor_that_answered(world: World) -> None:
    acme, globex = world.vendors
    asset = await world.asset()
    task_id = await world.task(asset, acme)

    await send_back_for_rework(
        world.labeling, world.request(asset, task_id, vendor_id=world.outsider)
    )

    assert (await world.fetch(task_id)).excluded_vendors == [globex]


async def test_a_named_vendor_holding_another_replica_does_not_get_a_second(world: World) -> None:
    """With several vendors, replicas of one asset go to different vendors: a reviewer naming
    the vendor of replica 1 for both replicas sends replica 2 back to the vendor that answered it
    (it would otherwise wait forever for a vendor the dispatcher never gives it to)."""
    acme, globex = world.vendors
    asset = await world.asset()
    first = await world.task(asset, acme, replica=0)
    second = await world.task(asset, globex, replica=1)

    await send_back_for_rework(world.labeling, world.request(asset, first, second, vendor_id=acme))

    assert (await world.fetch(first)).excluded_vendors == [globex]
    assert (await world.fetch(second)).excluded_vendors == [acme]


async def test_a_cancelled_job_sends_nothing_back(world: World) -> None:
    asset = await world.asset()
    task_id = await world.task(asset, world.vendors[0])
    async with world.labeling.units.begin() as uow:
        job = await uow.session.get(Job, world.job_id)
        assert job is not None
        job.state = "cancelled"

    await send_back_for_rework(world.labeling, world.request(asset, task_id))

    assert (await world.fetch(task_id)).state == "submitted"


async def test_the_dispatcher_sends_the_reworked_task_to_its_vendor_only(world: World) -> None:
    acme, globex = world.vendors
    asset = await world.asset()
    task_id = await world.task(asset, acme)
    await send_back_for_rework(world.labeling, world.request(asset, task_id))

    assert not await dispatching._make_batch(world.labeling, globex)
    assert await dispatching._make_batch(world.labeling, acme)

    async with world.labeling.units.read() as session:
        delivery = (
            await session.execute(select(Delivery).where(Delivery.task_ids.contains([task_id])))
        ).scalar_one()
        attempts = (
            await session.execute(
                select(Assignment.attempt, Assignment.outcome)
                .where(Assignment.task_id == task_id)
                .order_by(Assignment.attempt)
            )
        ).all()
    assert delivery.vendor_id == acme
    (sent,) = json.loads(delivery.body)["tasks"]
    assert (sent["task_id"], sent["rework_comment"]) == (str(task_id), "the left car is missing")
    assert [tuple(a) for a in attempts] == [(0, "answered"), (1, "open")]
    assert (await world.fetch(task_id)).state == "assigned"


def test_rework_vendor_rules() -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    task, other = uuid.uuid4(), uuid.uuid4()
    assert rework_vendor(task, a, None, [a, b], {}) == a
    assert rework_vendor(task, a, b, [a, b], {task: {a}}) == b
    assert rework_vendor(task, a, c, [a, b], {}) == a  # not a vendor of the job
    assert rework_vendor(task, a, b, [a, b], {task: {a}, other: {b}}) == a
    assert rework_vendor(task, a, a, [a], {other: {a}}) == a  # one vendor: replicas may share
