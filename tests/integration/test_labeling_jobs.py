"""Labeling-dispatch's use cases in process on the real Postgres: vendors, jobs, tasks."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select

from services.labeling_dispatch.context import Labeling
from services.labeling_dispatch.models import (
    Assignment,
    KnownAsset,
    Ontology,
    OntologyVersion,
    Task,
    Vendor,
)
from services.labeling_dispatch.repository import assets as asset_repo
from services.labeling_dispatch.use_cases import jobs, mirror, predictions, vendors
from services.labeling_dispatch.use_cases.jobs import GoldItemIn, JobRequest
from shared.auth import Principal, Role
from shared.errors import ApiError
from shared.events import (
    AssetCleanedV1,
    AssetIngestedV1,
    AssetRejectedV1,
    DatasetCreatedV1,
    Envelope,
    Payload,
    event_type_of,
)
from shared.routing import Event

ADMIN = Principal("admin-key", "tester", Role.admin)
SCOPED_ADMIN = Principal("scoped-key", "scoped", Role.admin, frozenset({str(uuid.uuid4())}))


async def new_vendor(labeling: Labeling, name: str = "acme") -> Vendor:
    vendor, _ = await vendors.create_vendor(
        labeling,
        ADMIN,
        name=name,
        kind="webhook",
        url="http://127.0.0.1:9/hook",
        capacity=10,
        batch_size=5,
    )
    return vendor


async def test_vendor_key_is_shown_once_and_found_by_its_hash(labeling: Labeling) -> None:
    vendor, credentials = await vendors.create_vendor(
        labeling,
        ADMIN,
        name="acme",
        kind="webhook",
        url="https://v.example/h",
        capacity=3,
        batch_size=2,
    )
    assert credentials.api_key.startswith("cvv_") and len(credentials.secret) == 64
    assert vendor.api_key_hash != credentials.api_key
    found = await vendors.vendor_for_key(labeling, credentials.api_key)
    assert found is not None and found.id == vendor.id
    assert await vendors.vendor_for_key(labeling, "cvv_nope") is None
    _, rotated = await vendors.rotate_credentials(labeling, ADMIN, vendor.id)
    assert await vendors.vendor_for_key(labeling, credentials.api_key) is None
    again = await vendors.vendor_for_key(labeling, rotated.api_key)
    assert again is not None and again.secret == rotated.secret


async def test_vendor_refusals(labeling: Labeling) -> None:
    await new_vendor(labeling)
    with pytest.raises(ApiError) as taken:
        await new_vendor(labeling)
    assert taken.value.status == 409
    with pytest.raises(ApiError) as kind:
        await vendors.create_vendor(
            labeling, ADMIN, name="carrier", kind="pigeon", url=None, capacity=1, batch_size=1
        )
    assert kind.value.code == "unsupported_vendor_kind"
    with pytest.raises(ApiError) as token:
        await vendors.create_vendor(
            labeling,
            ADMIN,
            name="hooked",
            kind="webhook",
            url="http://a",
            capacity=1,
            batch_size=1,
            token="t",
        )
    assert token.value.code == "token_not_allowed"
    # a Label Studio vendor is registered only once its server answers to its token
    for url in ("http://127.0.0.1:9", "http://127.0.0.1:8080/not-label-studio/"):
        with pytest.raises(ApiError) as unreachable:
            await vendors.create_vendor(
                labeling,
                ADMIN,
                name="ls",
                kind="label_studio",
                url=url,
                capacity=1,
                batch_size=1,
                token="nope",
            )
        assert unreachable.value.code == "label_studio_unreachable"
    with pytest.raises(ApiError) as scoped:
        await vendors.create_vendor(
            labeling,
            SCOPED_ADMIN,
            name="x",
            kind="webhook",
            url="http://a",
            capacity=1,
            batch_size=1,
        )
    assert scoped.value.status == 403


async def test_vendor_change_applies_only_given_settings(labeling: Labeling) -> None:
    vendor = await new_vendor(labeling)
    changed = await vendors.change_vendor(
        labeling, ADMIN, vendor.id, {"capacity": 7, "enabled": False}
    )
    assert (changed.capacity, changed.enabled, changed.batch_size) == (7, False, 5)
    async with labeling.units.read() as session:
        stored = (await session.execute(select(Vendor).where(Vendor.id == vendor.id))).scalar_one()
    assert stored.capacity == 7 and not stored.enabled
    with pytest.raises(ApiError) as missing:
        await vendors.change_vendor(labeling, ADMIN, uuid.uuid4(), {"capacity": 1})
    assert missing.value.status == 404


SPEC = {"classes": [{"name": "car", "shape": "bbox"}, {"name": "road", "shape": "polygon"}]}
T0 = datetime(2026, 1, 1, tzinfo=UTC)


P = TypeVar("P", bound=Payload)


def event(payload: P, *, at: datetime = T0, trace: str | None = None) -> Event[P]:
    envelope = Envelope(
        id=str(uuid.uuid4()),
        source="/test",
        type=event_type_of(payload).name,
        time=at,
        data=payload.model_dump(mode="json"),
        traceparent=trace,
    )
    return Event(envelope, event_type_of(payload).topic.name, payload)


class World:
    """A dataset, an ontology and a vendor, and ways to announce assets into the dataset."""

    def __init__(self, labeling: Labeling) -> None:
        self.labeling = labeling
        self.dataset_id = uuid.uuid4()
        self.slug = f"ds-{self.dataset_id.hex[:8]}"
        self.clock = T0

    async def start(self) -> World:
        await mirror.remember_datasets(
            self.labeling,
            [
                event(
                    DatasetCreatedV1(
                        dataset_id=self.dataset_id, slug=self.slug, name="d", created_by="t"
                    )
                )
            ],
        )
        async with self.labeling.units.begin() as uow:
            ontology = Ontology(
                id=uuid.uuid4(), name=f"o-{self.slug}", latest_version=1, created_by="t"
            )
            uow.session.add(ontology)
            await uow.session.flush()
            uow.session.add(
                OntologyVersion(ontology_id=ontology.id, version=1, spec=SPEC, created_by="t")
            )
        self.ontology = ontology.name
        self.vendor = await new_vendor(self.labeling, f"v-{self.slug}")
        return self

    async def ingested(
        self, media_type: str = "image/png", asset_id: uuid.UUID | None = None
    ) -> uuid.UUID:
        asset_id = asset_id or uuid.uuid4()
        payload = AssetIngestedV1(
            asset_id=asset_id,
            dataset_id=self.dataset_id,
            dataset_slug=self.slug,
            sha256="0" * 64,
            size_bytes=10,
            media_type=media_type,
            filename="a.png",
            source="upload",
            uploaded_by="t",
            bucket="conveyor-raw",
            object_key="k",
        )
        trace = f"00-{asset_id.hex}-{'1' * 16}-01"
        await mirror.record_ingested(self.labeling, [event(payload, trace=trace)])
        return asset_id

    async def cleaned(self, *asset_ids: uuid.UUID, media_type: str = "image/png") -> None:
        runs = []
        for asset_id in asset_ids:
            self.clock += timedelta(seconds=1)
            payload = AssetCleanedV1(
                asset_id=asset_id,
                dataset_id=self.dataset_id,
                dataset_slug=self.slug,
                media_type=media_type,
                metrics={"width": 640.0, "height": 480.0},
                policy_version=1,
            )
            runs.append(event(payload, at=self.clock))
        await mirror.record_cleaned(self.labeling, runs)

    async def rejected(self, asset_id: uuid.UUID) -> None:
        payload = AssetRejectedV1(
            asset_id=asset_id,
            dataset_id=self.dataset_id,
            dataset_slug=self.slug,
            media_type="image/png",
            metrics={},
            reasons=[],
            policy_version=1,
        )
        await mirror.record_rejected(self.labeling, [event(payload)])

    async def images(self, count: int) -> list[uuid.UUID]:
        ids = [await self.ingested() for _ in range(count)]
        await self.cleaned(*ids)
        return ids

    def request(self, **overrides: Any) -> JobRequest:
        fields: dict[str, Any] = {
            "name": "job",
            "dataset": self.slug,
            "ontology": self.ontology,
            "ontology_version": None,
            "vendor_ids": [self.vendor.id],
        }
        return JobRequest(**(fields | overrides))


@pytest.fixture
async def world(labeling: Labeling) -> World:
    return await World(labeling).start()


async def tasks_of(labeling: Labeling, job_id: uuid.UUID) -> list[Task]:
    async with labeling.units.read() as session:
        query = (
            select(Task).where(Task.job_id == job_id).order_by(Task.priority_score, Task.replica)
        )
        return list((await session.execute(query)).scalars())


async def test_job_queues_cleaned_images_at_creation_and_later_ones_as_they_arrive(
    world: World,
) -> None:
    before = await world.images(3)
    rejected = await world.ingested()
    await world.rejected(rejected)
    video = await world.ingested("video/mp4")
    await world.cleaned(video, media_type="video/mp4")
    pending = await world.ingested()  # not judged yet
    created = await jobs.create_job(world.labeling, ADMIN, world.request(overlap=2))
    assert world.labeling.wake_dispatcher.is_set()
    tasks = await tasks_of(world.labeling, created.job.id)
    assert sorted(t.asset_id for t in tasks) == sorted(before * 2)
    assert {(t.state, t.gold) for t in tasks} == {("queued", False)}

    # the verdict may come before asset.ingested: either order ends the same
    early = uuid.uuid4()
    await world.cleaned(pending, early)
    await world.ingested(asset_id=early)
    await world.rejected(await world.ingested())
    tasks = await tasks_of(world.labeling, created.job.id)
    assert sorted(t.asset_id for t in tasks) == sorted([*before, pending, early] * 2)
    # each asset: replicas 0 and 1, in arrival order
    assert [t.replica for t in tasks if t.asset_id == early] == [0, 1]
    assert [t.asset_id for t in tasks][::2] == [*before, pending, early]
    async with world.labeling.units.read() as session:
        known = await session.get(KnownAsset, early)
    assert known is not None and known.traceparent is not None and known.width == 640


async def test_a_redelivered_verdict_queues_nothing_twice(world: World) -> None:
    created = await jobs.create_job(world.labeling, ADMIN, world.request())
    asset_id = await world.ingested()
    payload = AssetCleanedV1(
        asset_id=asset_id,
        dataset_id=world.dataset_id,
        dataset_slug=world.slug,
        media_type="image/png",
        metrics={"width": 10.0, "height": 10.0},
        policy_version=1,
    )
    once = event(payload)
    await mirror.record_cleaned(world.labeling, [once])
    await mirror.record_cleaned(world.labeling, [once])
    await mirror.record_cleaned(world.labeling, [event(payload)])  # a re-judgement
    assert len(await tasks_of(world.labeling, created.job.id)) == 1


async def test_gold_tasks_keep_to_the_ratio_and_are_drawn_least_used_first(world: World) -> None:
    gold = await world.images(2)
    box = {"class": "car", "type": "bbox", "bbox": {"x": 1, "y": 2, "width": 30, "height": 20}}
    request = world.request(gold_ratio=0.2, gold_set=[GoldItemIn(g, [box]) for g in gold])
    created = await jobs.create_job(world.labeling, ADMIN, request)
    await world.images(10)
    tasks = await tasks_of(world.labeling, created.job.id)
    golds = [t for t in tasks if t.gold]
    regular = [t for t in tasks if not t.gold]
    assert len(regular) == 12
    assert len(golds) == 3  # floor(0.2 * 12 / 0.8)
    assert len(golds) / len(tasks) <= 0.2
    assert {t.asset_id for t in golds} == set(gold)  # both used before either is used twice
    view = await jobs.get_job(world.labeling, ADMIN, created.job.id)
    assert (view.job.regular_tasks, view.job.gold_tasks) == (12, 3)


async def test_gold_shapes_are_checked_against_the_ontology(world: World) -> None:
    gold = await world.images(1)
    bad = {"class": "tree", "type": "bbox", "bbox": {"x": 1, "y": 2, "width": 3, "height": 4}}
    with pytest.raises(ApiError) as refused:
        await jobs.create_job(
            world.labeling,
            ADMIN,
            world.request(gold_ratio=0.1, gold_set=[GoldItemIn(gold[0], [bad])]),
        )
    assert refused.value.code == "invalid_gold_set"
    assert refused.value.details["problems"][0]["code"] == "unknown_class"
    with pytest.raises(ApiError) as missing:
        await jobs.create_job(world.labeling, ADMIN, world.request(gold_ratio=0.1))
    assert missing.value.code == "gold_set_required"


async def test_uncertainty_sends_the_least_sure_first_and_unpredicted_last(world: World) -> None:
    sure, unsure, unknown_early, unknown_late = await world.images(4)
    await predictions.attach_predictions(
        world.labeling,
        ADMIN,
        [
            predictions.PredictionIn(sure, "m", [_scored(0.9), _scored(0.1)]),
            predictions.PredictionIn(unsure, "m", [_scored(0.5), _scored(0.45)]),
        ],
    )
    created = await jobs.create_job(world.labeling, ADMIN, world.request(priority="uncertainty"))
    order = [t.asset_id for t in await tasks_of(world.labeling, created.job.id)]
    assert order == [unsure, sure, unknown_early, unknown_late]
    # a later prediction re-orders the queued tasks
    await predictions.attach_predictions(
        world.labeling,
        ADMIN,
        [predictions.PredictionIn(unknown_late, "m", [_scored(0.3), _scored(0.29)])],
    )
    order = [t.asset_id for t in await tasks_of(world.labeling, created.job.id)]
    assert order == [unknown_late, unsure, sure, unknown_early]


def _scored(score: float) -> dict[str, Any]:
    return {
        "class": "car",
        "type": "bbox",
        "bbox": {"x": 1, "y": 1, "width": 5, "height": 5},
        "score": score,
    }


async def test_pause_resume_cancel_and_illegal_moves(world: World) -> None:
    await world.images(2)
    created = await jobs.create_job(world.labeling, ADMIN, world.request())
    job_id = created.job.id
    paused = await jobs.change_job_state(world.labeling, ADMIN, job_id, "paused")
    assert paused.job.state == "paused"
    await world.images(1)  # a paused job still takes in new assets
    assert len(await tasks_of(world.labeling, job_id)) == 3
    with pytest.raises(ApiError) as twice:
        await jobs.change_job_state(world.labeling, ADMIN, job_id, "paused")
    assert twice.value.status == 409
    await jobs.change_job_state(world.labeling, ADMIN, job_id, "open")
    # one task handed to the vendor, to see its assignment closed by the cancel
    first = (await tasks_of(world.labeling, job_id))[0]
    async with world.labeling.units.begin() as uow:
        delivery = uuid.uuid4()
        uow.session.add(
            Assignment(task_id=first.id, attempt=0, vendor_id=world.vendor.id, delivery_id=delivery)
        )
        task = await uow.session.get(Task, first.id)
        assert task is not None
        task.state, task.vendor_id = "assigned", world.vendor.id
    cancelled = await jobs.change_job_state(world.labeling, ADMIN, job_id, "cancelled")
    assert cancelled.job.state == "cancelled"
    assert {t.state for t in await tasks_of(world.labeling, job_id)} == {"cancelled"}
    async with world.labeling.units.read() as session:
        outcome = await session.scalar(
            select(Assignment.outcome).where(Assignment.task_id == first.id)
        )
    assert outcome == "cancelled"
    with pytest.raises(ApiError) as reopen:
        await jobs.change_job_state(world.labeling, ADMIN, job_id, "open")
    assert reopen.value.status == 409
    await world.images(1)  # a cancelled job takes nothing new
    assert len(await tasks_of(world.labeling, job_id)) == 3
    view = await jobs.get_job(world.labeling, ADMIN, job_id)
    counts = {(p.vendor_id, p.state): p.count for p in view.progress}
    assert counts == {(world.vendor.id, "cancelled"): 1, (None, "cancelled"): 2}


async def test_jobs_are_hidden_from_keys_of_other_datasets(world: World) -> None:
    created = await jobs.create_job(world.labeling, ADMIN, world.request())
    stranger = Principal("s", "stranger", Role.viewer, frozenset({str(uuid.uuid4())}))
    with pytest.raises(ApiError) as hidden:
        await jobs.get_job(world.labeling, stranger, created.job.id)
    assert hidden.value.status == 404
    page, _ = await jobs.list_jobs(world.labeling, stranger, 50, None, dataset=None, state=None)
    assert page == []
    with pytest.raises(ApiError) as no_dataset:
        await jobs.create_job(world.labeling, SCOPED_ADMIN, world.request())
    assert no_dataset.value.status == 404


async def test_job_refusals(world: World) -> None:
    other = await new_vendor(world.labeling, f"other-{world.slug}")
    with pytest.raises(ApiError) as too_many:
        await jobs.create_job(
            world.labeling, ADMIN, world.request(vendor_ids=[world.vendor.id, other.id], overlap=3)
        )
    assert too_many.value.code == "overlap_exceeds_vendors"
    await vendors.change_vendor(world.labeling, ADMIN, other.id, {"enabled": False})
    with pytest.raises(ApiError) as disabled:
        await jobs.create_job(world.labeling, ADMIN, world.request(vendor_ids=[other.id]))
    assert disabled.value.code == "vendor_disabled"
    with pytest.raises(ApiError) as version:
        await jobs.create_job(world.labeling, ADMIN, world.request(ontology_version=9))
    assert version.value.status == 404


async def test_ten_thousand_cleaned_images_are_queued_at_creation(world: World) -> None:
    """Measures the bulk enqueue at job creation (the figure is printed with -s)."""
    async with world.labeling.units.begin() as uow:
        rows = [
            {
                "id": uuid.uuid4(),
                "dataset_id": world.dataset_id,
                "media_type": "image/jpeg",
                "state": "cleaned",
                "width": 100,
                "height": 100,
                "cleaned_at": T0 + timedelta(seconds=i),
            }
            for i in range(10_000)
        ]
        for start in range(0, len(rows), 1000):
            await asset_repo.upsert_verdicts(uow.session, rows[start : start + 1000])
    started = time.perf_counter()
    created = await jobs.create_job(world.labeling, ADMIN, world.request())
    elapsed = time.perf_counter() - started
    print(f"job creation queued 10000 tasks in {elapsed:.2f} s")
    async with world.labeling.units.read() as session:
        count = await session.scalar(
            select(func.count()).select_from(Task).where(Task.job_id == created.job.id)
        )
    assert count == 10_000
