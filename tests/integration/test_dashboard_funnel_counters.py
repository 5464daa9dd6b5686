"""The funnel's counters (``dashboard.funnel_hours``) on the real Postgres, and Kafka: whatever
the events do to the asset rows (verdicts arriving before uploads, a verdict replaced by a
newer one, an older fact arriving late, the same event delivered again, two units of work on
the same assets at once), the funnel read from the counters is the funnel counted from the
asset rows, for whole windows and for windows that cut hours. The migration that adds the
counters fills them from rows already projected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from deploy.sandbox import recreate_database
from services.dashboard.context import SOURCE, Dashboard
from services.dashboard.models import inbox
from services.dashboard.repository.queries import Window
from services.dashboard.settings import DashboardSettings
from services.dashboard.use_cases.filters import Filter
from services.dashboard.use_cases.overview import funnel
from services.dashboard.use_cases.projecting import project
from shared import endpoints
from shared.db import alembic_config, migrate
from shared.events import (
    EVENT_TYPES,
    AnnotationAcceptedV1,
    AnnotationRejectedV1,
    AnnotationReworkRequestedV1,
    AnnotationSubmittedV1,
    AssetCleanedV1,
    AssetIngestedV1,
    AssetRejectedV1,
    DatasetCreatedV1,
    Envelope,
    Payload,
    QualityReason,
    TaskCreatedV1,
    TaskDispatchedV1,
    event_type_of,
)
from shared.kafka import EventConsumer, encode
from shared.routing import Delivered, Event, Router
from shared.storage import ObjectStore
from shared.uow import UnitsOfWork
from tests.conftest import KAFKA
from tests.integration.conftest import USECASE_DB_URL, kafka_topic

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "services" / "dashboard" / "migrations"
H10 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
STAGES = (
    "stored",
    "cleaned",
    "rejected",
    "in_labeling",
    "submitted",
    "accepted",
    "rework",
    "qc_rejected",
)

# The funnel as counting the asset rows gives it (what the page read before the counters).
COUNT_ROWS = text(
    """
    SELECT count(*) AS stored,
           count(*) FILTER (WHERE verdict = 'cleaned') AS cleaned,
           count(*) FILTER (WHERE verdict = 'rejected') AS rejected,
           count(*) FILTER (WHERE verdict IS NULL) AS cleaning,
           count(*) FILTER (WHERE tasks > 0) AS in_labeling,
           count(*) FILTER (WHERE submissions > 0) AS submitted,
           count(*) FILTER (WHERE decision = 'accepted') AS accepted,
           count(*) FILTER (WHERE decision = 'rework') AS rework,
           count(*) FILTER (WHERE decision = 'rejected') AS qc_rejected
    FROM dashboard.assets
    WHERE uploaded_at IS NOT NULL AND dataset_id = ANY(:datasets)
      AND uploaded_at >= coalesce(CAST(:since AS timestamptz), '-infinity')
      AND uploaded_at < coalesce(CAST(:until AS timestamptz), 'infinity')
    """
)
COUNT_REASONS = text(
    """
    SELECT r ->> 'code' AS code, count(DISTINCT asset_id) AS n
    FROM dashboard.assets, jsonb_array_elements(reasons) AS r
    WHERE verdict = 'rejected' AND uploaded_at IS NOT NULL AND dataset_id = ANY(:datasets)
      AND uploaded_at >= coalesce(CAST(:since AS timestamptz), '-infinity')
      AND uploaded_at < coalesce(CAST(:until AS timestamptz), 'infinity')
    GROUP BY 1
    """
)

# ------------------------------------------------------------------------------ fixtures


def settings() -> DashboardSettings:
    return DashboardSettings(consumer_group="test-dashboard-funnel")


@pytest.fixture
async def dashboard_schema(usecase_engine: AsyncEngine) -> None:
    """The dashboard's schema in the use-case database (its migrations are idempotent)."""
    await migrate(MIGRATIONS, USECASE_DB_URL, "dashboard")


@contextlib.asynccontextmanager
async def dashboard_over(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Dashboard]:
    own = settings()
    units = UnitsOfWork(
        sessions, outbox=None, inbox=inbox, source=SOURCE, consumer=own.consumer_group
    )
    async with httpx.AsyncClient() as http:
        yield Dashboard(own, units, ObjectStore(own), http)


@pytest.fixture
async def board(
    dashboard_schema: None, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Dashboard]:
    """The dashboard's context over the rolled-back sessions."""
    async with dashboard_over(sessions) as dashboard:
        yield dashboard


# ------------------------------------------------------------------------------ events


def event(payload: Payload, at: datetime, event_id: str | None = None) -> Event[Any]:
    event_type = event_type_of(payload)
    envelope = Envelope(
        id=event_id or str(uuid.uuid4()),
        source="/tests/dashboard-funnel",
        type=event_type.name,
        time=at,
        data=payload.model_dump(mode="json"),
    )
    return Event(envelope, event_type.topic.name, payload)


class World:
    """Payloads of one dataset's assets, as ingest, clean, labeling and QC send them."""

    def __init__(self) -> None:
        self.dataset = uuid.uuid4()
        self.slug = f"funnel-{self.dataset.hex[:8]}"
        self.job = uuid.uuid4()
        self.vendor = uuid.uuid4()

    def created(self) -> DatasetCreatedV1:
        return DatasetCreatedV1(
            dataset_id=self.dataset, slug=self.slug, name=self.slug, created_by="tests"
        )

    def ingested(self, asset: uuid.UUID) -> AssetIngestedV1:
        sha256 = asset.hex * 2
        return AssetIngestedV1(
            asset_id=asset,
            dataset_id=self.dataset,
            dataset_slug=self.slug,
            sha256=sha256,
            size_bytes=1000,
            media_type="image/jpeg",
            filename=f"{asset}.jpg",
            source="upload",
            uploaded_by="tests",
            bucket="conveyor-raw",
            object_key=f"sha256/{sha256}",
        )

    def _verdict(self, asset: uuid.UUID) -> dict[str, Any]:
        return {
            "asset_id": asset,
            "dataset_id": self.dataset,
            "dataset_slug": self.slug,
            "media_type": "image/jpeg",
            "metrics": {"mean_luminance": 100.0},
            "policy_version": 1,
        }

    def cleaned(self, asset: uuid.UUID) -> AssetCleanedV1:
        return AssetCleanedV1(**self._verdict(asset))

    def rejected(self, asset: uuid.UUID, *codes: str) -> AssetRejectedV1:
        reasons = [QualityReason(code=code, message=code) for code in codes]
        return AssetRejectedV1(**self._verdict(asset), reasons=reasons)

    def task(self, asset: uuid.UUID, task: uuid.UUID) -> TaskCreatedV1:
        return TaskCreatedV1(
            task_id=task,
            job_id=self.job,
            asset_id=asset,
            dataset_id=self.dataset,
            replica=1,
            gold=False,
        )

    def dispatched(self, asset: uuid.UUID, task: uuid.UUID, at: datetime) -> TaskDispatchedV1:
        return TaskDispatchedV1(
            task_id=task,
            job_id=self.job,
            asset_id=asset,
            vendor_id=self.vendor,
            delivery_id=uuid.uuid4(),
            attempt=1,
            lease_expires_at=at + timedelta(hours=1),
        )

    def submitted(self, asset: uuid.UUID, task: uuid.UUID, at: datetime) -> AnnotationSubmittedV1:
        return AnnotationSubmittedV1(
            annotation_id=uuid.uuid4(),
            task_id=task,
            job_id=self.job,
            asset_id=asset,
            dataset_id=self.dataset,
            vendor_id=self.vendor,
            annotator_id="a",
            replica=1,
            gold=False,
            ontology_id=uuid.uuid4(),
            ontology_version=1,
            shapes=[],
            vendor_submitted_at=at,
            received_at=at,
            lead_time_seconds=1.0,
        )

    def decided(self, asset: uuid.UUID, decision: str) -> Payload:
        common = {"job_id": self.job, "asset_id": asset, "dataset_id": self.dataset}
        if decision == "accepted":
            return AnnotationAcceptedV1(
                **common, annotation_ids=[], shapes=[], decided_by="qc", automatic=True
            )
        if decision == "rework":
            return AnnotationReworkRequestedV1(
                **common, task_ids=[], comment="again", requested_by="qc", round=1
            )
        return AnnotationRejectedV1(**common, annotation_ids=[], decided_by="qc", comment="no")


# ------------------------------------------------------------------------------ reading


async def counted_from_rows(session: AsyncSession, window: Window) -> dict[str, Any]:
    """The funnel's stages and rejection reasons counted from the asset rows."""
    params = {"datasets": list(window.datasets or ()), "since": window.since, "until": window.until}
    stages = dict((await session.execute(COUNT_ROWS, params)).one()._mapping)
    reasons = {code: n for code, n in await session.execute(COUNT_REASONS, params)}
    return {
        "stages": {s: stages[s] for s in STAGES},
        "reasons": reasons,
        "cleaning": stages["cleaning"],
    }


async def from_counters(dashboard: Dashboard, window: Window) -> dict[str, Any]:
    """The funnel as the API answers it (read from the counters)."""
    body = await funnel(dashboard, Filter(window))
    stages = {s["stage"]: s["count"] for s in body["stages"]}
    (cleaning,) = [loss for loss in body["losses"] if loss["stage"] == "cleaning"]
    return {
        "stages": {s: stages[s] for s in STAGES},
        "reasons": {r["code"]: r["count"] for r in cleaning["reasons"]},
        "cleaning": body["waiting"]["cleaning"],
    }


async def assert_counters_match_rows(
    dashboard: Dashboard,
    datasets: Sequence[uuid.UUID],
    windows: Sequence[tuple[datetime | None, datetime | None]],
) -> None:
    async with dashboard.units.read() as session:
        for since, until in windows:
            window = Window(tuple(datasets), since, until)
            rows = await counted_from_rows(session, window)
            assert await from_counters(dashboard, window) == rows, (since, until)


def windows_around(start: datetime, hours: int) -> list[tuple[datetime | None, datetime | None]]:
    """Open, whole-hour and hour-cutting windows over ``hours`` hours from ``start``."""
    end = start + timedelta(hours=hours)
    return [
        (None, None),
        (start, end),
        (start + timedelta(minutes=17, seconds=3), None),
        (None, end - timedelta(minutes=41)),
        (start + timedelta(minutes=17), end - timedelta(hours=1, minutes=5)),
        (start + timedelta(hours=1, minutes=10), start + timedelta(hours=1, minutes=50)),
        (start + timedelta(hours=1), start + timedelta(hours=2)),
    ]


# ------------------------------------------------------------------------------ the tests


async def test_a_verdict_moves_an_asset_between_stages_and_replays_change_nothing(
    board: Dashboard,
) -> None:
    w = World()
    a, b, c, e = (uuid.uuid4() for _ in range(4))
    t = H10 + timedelta(minutes=15)
    windows = windows_around(H10, 2)

    async def step(*events: Event[Any]) -> dict[str, Any]:
        await project(board, events)
        await assert_counters_match_rows(board, [w.dataset], windows)
        return await from_counters(board, Window((w.dataset,), None, None))

    up_a = event(w.ingested(a), t)
    now = await step(
        event(w.created(), H10),
        up_a,
        event(w.ingested(b), t + timedelta(minutes=5)),
        event(w.ingested(c), t + timedelta(minutes=50)),
    )
    assert now["stages"]["stored"] == 3 and now["cleaning"] == 3

    # A is rejected for two reasons, B cleaned; A's upload delivered again, in the same poll
    rejected_a = event(w.rejected(a, "blurry", "dark"), t + timedelta(seconds=5))
    now = await step(rejected_a, event(w.cleaned(b), t + timedelta(minutes=6)), up_a, up_a)
    assert now["stages"]["stored"] == 3
    assert (now["stages"]["cleaned"], now["stages"]["rejected"], now["cleaning"]) == (1, 1, 1)
    assert now["reasons"] == {"blurry": 1, "dark": 1}

    # clean looks at A again and keeps it: it moves from rejected to cleaned
    now = await step(event(w.cleaned(a), t + timedelta(minutes=30)))
    assert (now["stages"]["cleaned"], now["stages"]["rejected"], now["reasons"]) == (2, 0, {})

    # the old rejection again: by its id (the inbox), and as a new event of the older fact
    before = now
    now = await step(rejected_a)
    now = await step(event(w.rejected(a, "blurry"), t + timedelta(seconds=5)))
    assert now == before

    # a verdict read before its upload counts once the upload is read
    now = await step(event(w.rejected(e, "truncated"), t + timedelta(minutes=56)))
    assert now == before
    now = await step(event(w.ingested(e), t + timedelta(minutes=55)))
    assert now["stages"]["stored"] == 4 and now["stages"]["rejected"] == 1
    assert now["reasons"] == {"truncated": 1}

    # labeling and QC: the latest decision counts
    task = uuid.uuid4()
    later = t + timedelta(hours=3)
    now = await step(
        event(w.task(b, task), later),
        event(w.dispatched(b, task, later), later + timedelta(seconds=1)),
        event(w.submitted(b, task, later), later + timedelta(seconds=2)),
        event(w.decided(b, "rework"), later + timedelta(seconds=3)),
        event(w.decided(b, "accepted"), later + timedelta(seconds=4)),
        event(w.decided(c, "rejected"), later + timedelta(seconds=5)),
    )
    assert {s: now["stages"][s] for s in ("in_labeling", "submitted", "accepted", "rework")} == {
        "in_labeling": 1,
        "submitted": 1,
        "accepted": 1,
        "rework": 0,
    }
    assert now["stages"]["qc_rejected"] == 1


async def test_a_random_stream_with_duplicates_and_late_facts_counts_as_the_rows_do(
    board: Dashboard,
) -> None:
    rng = random.Random(20261202)
    worlds = [World(), World()]
    events: list[Event[Any]] = [event(w.created(), H10) for w in worlds]
    for index in range(240):
        w = worlds[index % 2]
        asset = uuid.uuid4()
        uploaded = H10 + timedelta(seconds=rng.uniform(0, 5 * 3600))
        events.append(event(w.ingested(asset), uploaded))
        at = uploaded
        for _ in range(rng.choice((0, 1, 1, 2, 3))):  # some assets are looked at again
            at += timedelta(seconds=rng.uniform(-30, 600))  # -: an older fact read later
            codes = rng.sample(
                ("blurry", "dark", "truncated", "exact_duplicate"), rng.randint(1, 2)
            )
            verdict = w.rejected(asset, *codes) if rng.random() < 0.4 else w.cleaned(asset)
            events.append(event(verdict, at))
        if rng.random() < 0.3:
            task = uuid.uuid4()
            at += timedelta(minutes=5)
            events.append(event(w.task(asset, task), at))
            if rng.random() < 0.7:
                events.append(event(w.submitted(asset, task, at), at + timedelta(minutes=1)))
                for step in range(rng.randint(0, 2)):
                    decision = rng.choice(("accepted", "rework", "rejected"))
                    events.append(
                        event(w.decided(asset, decision), at + timedelta(minutes=2 + step))
                    )
    # topics are read side by side: an asset's later events may arrive first
    rng.shuffle(events)
    # and some are delivered again, a while later
    redelivered = events + [rng.choice(events) for _ in range(len(events) // 4)]
    datasets = [w.dataset for w in worlds]
    windows = windows_around(H10, 5)
    start = 0
    while start < len(redelivered):
        size = rng.randint(1, 90)
        await project(board, redelivered[start : start + size])
        start += size
        await assert_counters_match_rows(board, datasets, windows[:3])
    await assert_counters_match_rows(board, datasets, windows)
    for w in worlds:
        await assert_counters_match_rows(board, [w.dataset], windows)
    total = await from_counters(board, Window(tuple(datasets), None, None))
    assert total["stages"]["stored"] == 240
    assert total["stages"]["cleaned"] and total["stages"]["rejected"] and total["reasons"]


# ------------------------------------------------------------------ concurrent units of work


@pytest.fixture
async def own_database(stack: None) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A database of the test's own, committed for real (units of work side by side)."""
    name = "conveyor_dashboard_funnel"
    await recreate_database(name)
    url = endpoints.postgres_url(name, driver="asyncpg")
    await migrate(MIGRATIONS, url, "dashboard")
    engine = create_async_engine(url, pool_size=4)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


async def test_two_copies_projecting_the_same_assets_at_once_count_each_once(
    own_database: async_sessionmaker[AsyncSession],
) -> None:
    """One copy reads the ingest topic, another the clean topic and a third the labeling
    topic: their units of work write the same asset rows at the same time (the row a verdict
    or a task finds may be one another copy has just inserted and not yet committed). For
    half the assets the uploads run ahead of the verdicts, for the other half behind them."""
    rng = random.Random(7)
    w = World()
    assets = [uuid.uuid4() for _ in range(400)]
    times = {a: H10 + timedelta(seconds=rng.uniform(0, 3 * 3600)) for a in assets}

    def uploads(part: list[uuid.UUID]) -> list[Event[Any]]:
        return [event(w.ingested(a), times[a]) for a in part]

    def verdicts(part: list[uuid.UUID]) -> list[Event[Any]]:
        return [
            event(w.rejected(a, "dark") if rng.random() < 0.3 else w.cleaned(a), times[a])
            for a in part
        ]

    tasks = [event(w.task(a, uuid.uuid4()), times[a]) for a in assets if rng.random() < 0.5]

    async def copy(events: list[Event[Any]], per_poll: int) -> None:
        async with dashboard_over(own_database) as dashboard:
            for start in range(0, len(events), per_poll):
                await project(dashboard, events[start : start + per_poll])

    ahead, behind = assets[:200], assets[200:]
    await project_once(own_database, [event(w.created(), H10)])
    await asyncio.gather(
        copy(uploads(ahead), 5),
        copy(verdicts(ahead), 40),
        copy(uploads(behind), 40),
        copy(verdicts(behind), 5),
        copy(tasks, 15),
    )
    async with dashboard_over(own_database) as dashboard:
        await assert_counters_match_rows(dashboard, [w.dataset], windows_around(H10, 3))
        total = await from_counters(dashboard, Window((w.dataset,), None, None))
    assert total["stages"]["stored"] == 400 and total["cleaning"] == 0
    assert total["stages"]["in_labeling"] == len(tasks)


async def project_once(
    sessions: async_sessionmaker[AsyncSession], events: list[Event[Any]]
) -> None:
    async with dashboard_over(sessions) as dashboard:
        await project(dashboard, events)


# ------------------------------------------------------------------------------ Kafka


@pytest.fixture
def topic(stack: None) -> Iterator[str]:
    yield from kafka_topic("test-dashboard-funnel", 3)


async def test_events_delivered_twice_through_kafka_and_replayed_by_a_new_group_count_once(
    board: Dashboard, topic: str
) -> None:
    """The dashboard's projection behind a real Kafka consumer: every record is sent twice
    (a producer retry), and a second consumer group then reads the topic from the start."""
    w = World()
    rng = random.Random(11)
    stream: list[Event[Any]] = [event(w.created(), H10)]
    for _ in range(120):
        asset = uuid.uuid4()
        at = H10 + timedelta(seconds=rng.uniform(0, 2 * 3600))
        stream.append(event(w.ingested(asset), at))
        stream.append(event(w.rejected(asset, "blurry"), at + timedelta(seconds=1)))
        if rng.random() < 0.5:
            stream.append(event(w.cleaned(asset), at + timedelta(seconds=9)))
    windows = windows_around(H10, 2)

    handed: list[int] = []  # records projected, per consumer run
    failures: list[BaseException] = []

    async def project_deliveries(dashboard: Dashboard, deliveries: Sequence[Delivered]) -> None:
        events = []
        for delivered in deliveries:
            payload_type = EVENT_TYPES[delivered.envelope.type].payload
            payload = payload_type.model_validate(delivered.envelope.data)
            events.append(Event(delivered.envelope, delivered.topic, payload))
        try:
            await project(dashboard, events)
        except BaseException as error:
            failures.append(error)
            raise
        handed[-1] += len(deliveries)

    async def consume(producer: AIOKafkaProducer, group: str) -> None:
        """Every record of the topic through a new consumer group (the test's database
        connection is the consumer's alone meanwhile)."""
        handed.append(0)
        consumer = EventConsumer(
            bootstrap_servers=KAFKA,
            group_id=group,
            router=Router({}, board, pattern=f"^{topic}$", catch_all=project_deliveries),
            producer=producer,
            whole_poll=True,
        )
        task = asyncio.create_task(consumer.run())
        try:
            async with asyncio.timeout(60):
                while handed[-1] < 2 * len(stream) and not failures:
                    await asyncio.sleep(0.1)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert not failures, failures

    producer = AIOKafkaProducer(bootstrap_servers=KAFKA)
    await producer.start()
    try:
        for e in stream:
            value, headers = encode(e.envelope)
            key = str(getattr(e.payload, "asset_id", w.dataset))
            for _ in range(2):
                await producer.send_and_wait(topic, value, key=key.encode(), headers=headers)
        await consume(producer, f"conveyor-test-{uuid.uuid4().hex[:8]}")
        first = await from_counters(board, Window((w.dataset,), None, None))
        await assert_counters_match_rows(board, [w.dataset], windows)
        await consume(producer, f"conveyor-test-{uuid.uuid4().hex[:8]}")
        again = await from_counters(board, Window((w.dataset,), None, None))
    finally:
        await producer.stop()
    assert first["stages"]["stored"] == 120
    assert again == first
    await assert_counters_match_rows(board, [w.dataset], windows)


# ------------------------------------------------------------------------------ migration


async def test_the_migration_fills_the_counters_from_the_rows_already_projected(
    stack: None,
) -> None:
    name = "conveyor_dashboard_funnel_migration"
    await recreate_database(name)
    url = endpoints.postgres_url(name, driver="asyncpg")
    config = alembic_config(MIGRATIONS, url, "dashboard")
    await asyncio.to_thread(command.upgrade, config, "0001")
    w = World()
    rng = random.Random(3)
    engine = create_async_engine(url)
    try:
        # rows as the projection before the counters wrote them, in every state
        rows: list[dict[str, Any]] = []
        for index in range(300):
            verdict = rng.choice((None, "cleaned", "rejected"))
            codes = rng.sample(("blurry", "dark", "truncated"), rng.randint(1, 3))
            rows.append(
                {
                    "asset_id": uuid.uuid4(),
                    "dataset_id": w.dataset,
                    # a few verdicts read before their upload
                    "uploaded_at": None
                    if index % 29 == 0
                    else H10 + timedelta(seconds=rng.uniform(0, 4 * 3600)),
                    "verdict": verdict,
                    "reasons": None
                    if verdict != "rejected"
                    else [{"code": c, "message": c} for c in codes],
                    "tasks": rng.choice((0, 0, 1, 2)),
                    "submissions": rng.choice((0, 1)),
                    "decision": rng.choice((None, None, "accepted", "rework", "rejected")),
                }
            )
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO dashboard.assets (asset_id, dataset_id, uploaded_at, verdict,"
                    " reasons, tasks, submissions, decision) VALUES (:asset_id, :dataset_id,"
                    " :uploaded_at, :verdict, CAST(:reasons AS jsonb), :tasks, :submissions,"
                    " :decision)"
                ),
                [
                    {
                        **row,
                        "reasons": None if row["reasons"] is None else json.dumps(row["reasons"]),
                    }
                    for row in rows
                ],
            )
        await asyncio.to_thread(command.upgrade, config, "head")
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        async with dashboard_over(sessions) as dashboard:
            windows = windows_around(H10, 4)
            await assert_counters_match_rows(dashboard, [w.dataset], windows)
            before = await from_counters(dashboard, Window((w.dataset,), None, None))
            assert before["stages"]["stored"] == sum(r["uploaded_at"] is not None for r in rows)
            # what a row was counted as is right: the next event moves the counters from it
            moved = [r for r in rows if r["verdict"] == "rejected" and r["uploaded_at"]][:5]
            await project(
                dashboard,
                [event(w.cleaned(r["asset_id"]), H10 + timedelta(hours=9)) for r in moved],
            )
            await assert_counters_match_rows(dashboard, [w.dataset], windows)
            after = await from_counters(dashboard, Window((w.dataset,), None, None))
        assert after["stages"]["rejected"] == before["stages"]["rejected"] - 5
        assert after["stages"]["cleaned"] == before["stages"]["cleaned"] + 5
        await asyncio.to_thread(command.downgrade, config, "0001")
    finally:
        await engine.dispose()
