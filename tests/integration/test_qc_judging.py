"""QC's judging in process on the real Postgres: answers checked, gold scored, assets decided."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import func, select, update

from services.qc.context import Qc
from services.qc.models import (
    AcceptedLabels,
    AssetReview,
    JudgedAnnotation,
    KnownAsset,
    KnownDataset,
    QcJob,
    outbox,
)
from services.qc.use_cases import decisions, judging, mirror, sweep
from shared.events import (
    AnnotationSubmittedV1,
    AnnotationWithdrawnV1,
    AssetCleanedV1,
    AssetIngestedV1,
    DatasetCreatedV1,
    Envelope,
    JobCreatedV1,
    OntologyVersionCreatedV1,
    Payload,
    TaskCreatedV1,
    TaskReworkSentV1,
    event_type_of,
)
from shared.routing import Event

T0 = datetime(2026, 1, 1, tzinfo=UTC)
P = TypeVar("P", bound=Payload)


def event(payload: P) -> Event[P]:
    envelope = Envelope(
        id=str(uuid.uuid4()),
        source="/test",
        type=event_type_of(payload).name,
        time=T0,
        data=payload.model_dump(mode="json"),
    )
    return Event(envelope, event_type_of(payload).topic.name, payload)


def box(x: float, y: float = 10, w: float = 100, h: float = 50, cls: str = "car") -> dict[str, Any]:
    return {"class": cls, "type": "bbox", "bbox": {"x": x, "y": y, "width": w, "height": h}}


class Job:
    """A dataset, an ontology version and a job as labeling announces them, and answers."""

    def __init__(self, qc: Qc, overlap: int, announce_job: bool = True) -> None:
        self.qc = qc
        self.overlap = overlap
        self.announce_job = announce_job
        self.dataset_id = uuid.uuid4()
        self.ontology_id = uuid.uuid4()
        self.job_id = uuid.uuid4()
        self.vendor_id = uuid.uuid4()
        self.tasks: dict[tuple[uuid.UUID, int], uuid.UUID] = {}

    async def start(self) -> Job:
        slug = f"ds-{self.dataset_id.hex[:8]}"
        await mirror.remember_datasets(
            self.qc,
            [
                event(
                    DatasetCreatedV1(
                        dataset_id=self.dataset_id, slug=slug, name="d", created_by="t"
                    )
                )
            ],
        )
        await mirror.remember_ontology_version(
            self.qc,
            event(
                OntologyVersionCreatedV1(
                    ontology_id=self.ontology_id,
                    name=f"o-{slug}",
                    version=1,
                    classes=["car", "person"],
                    created_by="t",
                )
            ),
        )
        if self.announce_job:
            await self.announce()
        return self

    async def announce(self) -> None:
        await mirror.remember_job(
            self.qc,
            event(
                JobCreatedV1(
                    job_id=self.job_id,
                    name="j",
                    dataset_id=self.dataset_id,
                    ontology_id=self.ontology_id,
                    ontology_version=1,
                    vendor_ids=[self.vendor_id],
                    overlap=self.overlap,
                    gold_ratio=0.0,
                    priority="arrival",
                    lease_seconds=600,
                    created_by="t",
                )
            ),
        )

    async def set_policy(self, **policy: Any) -> None:
        async with self.qc.units.begin() as uow:
            await uow.session.execute(
                update(QcJob).where(QcJob.id == self.job_id).values(policy=policy)
            )

    async def asset(self, gold_shapes: list[dict[str, Any]] | None = None) -> uuid.UUID:
        """A new asset of the dataset with its tasks (one per replica, or one gold task)."""
        asset_id = uuid.uuid4()
        replicas = 1 if gold_shapes is not None else self.overlap
        events = []
        for replica in range(replicas):
            task_id = uuid.uuid4()
            self.tasks[(asset_id, replica)] = task_id
            events.append(
                event(
                    TaskCreatedV1(
                        task_id=task_id,
                        job_id=self.job_id,
                        asset_id=asset_id,
                        dataset_id=self.dataset_id,
                        replica=replica,
                        gold=gold_shapes is not None,
                        gold_shapes=gold_shapes,
                    )
                )
            )
        await mirror.remember_tasks(self.qc, events)
        return asset_id

    def answer(
        self,
        asset_id: uuid.UUID,
        replica: int,
        shapes: list[dict[str, Any]],
        *,
        annotator: str | None = None,
        version: int = 1,
        gold: bool = False,
        received_at: datetime = T0,
    ) -> Event[AnnotationSubmittedV1]:
        return event(
            AnnotationSubmittedV1(
                annotation_id=uuid.uuid4(),
                task_id=self.tasks[(asset_id, replica)],
                job_id=self.job_id,
                asset_id=asset_id,
                dataset_id=self.dataset_id,
                vendor_id=self.vendor_id,
                annotator_id=annotator or f"worker-{replica}",
                replica=replica,
                gold=gold,
                ontology_id=self.ontology_id,
                ontology_version=1,
                shapes=shapes,
                vendor_submitted_at=None,
                received_at=received_at,
                lead_time_seconds=12.0,
                version=version,
            )
        )

    async def submit(self, *answers: Event[AnnotationSubmittedV1]) -> None:
        for answer in answers:
            await judging.judge_submitted(self.qc, [answer])

    async def submit_together(self, *answers: Event[AnnotationSubmittedV1]) -> None:
        """One run, as the consumer hands a partition's consecutive answers over."""
        await judging.judge_submitted(self.qc, list(answers))

    async def review(self, asset_id: uuid.UUID) -> AssetReview | None:
        async with self.qc.units.read() as session:
            return await session.get(AssetReview, (self.job_id, asset_id))

    async def accepted(self, asset_id: uuid.UUID) -> AcceptedLabels | None:
        async with self.qc.units.read() as session:
            return await session.get(AcceptedLabels, asset_id)

    async def events(self, asset_id: uuid.UUID) -> list[dict[str, Any]]:
        """The outbox envelopes about the asset, oldest first."""
        async with self.qc.units.read() as session:
            query = (
                select(outbox.c.envelope)
                .where(outbox.c.envelope["subject"].astext == str(asset_id))
                .order_by(outbox.c.id)
            )
            return list((await session.execute(query)).scalars())

    async def types(self, asset_id: uuid.UUID) -> list[str]:
        return [e["type"] for e in await self.events(asset_id)]


ACCEPTED = "conveyor.annotation.accepted.v1"
CONSENSUS = "conveyor.qc.consensus_computed.v1"
GOLD = "conveyor.qc.gold_scored.v1"


async def test_overlap_one_clean_answer_is_accepted_as_it_is(qc: Qc) -> None:
    job = await Job(qc, overlap=1).start()
    asset = await job.asset()
    answer = job.answer(asset, 0, [box(10), box(300, cls="person")])
    await job.submit(answer)

    review = await job.review(asset)
    assert review is not None and review.state == "accepted" and review.decided_by == "qc"
    labels = await job.accepted(asset)
    assert labels is not None
    assert labels.shapes == answer.payload.shapes
    assert labels.annotation_ids == [answer.payload.annotation_id]
    assert (labels.job_id, labels.ontology_id, labels.ontology_version) == (
        job.job_id,
        job.ontology_id,
        1,
    )
    [accepted] = await job.events(asset)
    assert accepted["type"] == ACCEPTED
    assert accepted["data"]["automatic"] is True
    assert accepted["data"]["shapes"] == answer.payload.shapes


async def test_overlap_one_duplicate_box_goes_to_review_with_the_finding(qc: Qc) -> None:
    job = await Job(qc, overlap=1).start()
    asset = await job.asset()
    await job.submit(job.answer(asset, 0, [box(10), box(10.5)]))

    review = await job.review(asset)
    assert review is not None and review.state == "review"
    assert len(review.reasons) == 1 and review.reasons[0].startswith("duplicate_shape:")
    assert review.label_set == [box(10), box(10.5)]
    assert await job.accepted(asset) is None
    assert await job.types(asset) == []
    async with qc.units.read() as session:
        stored = (await session.execute(select(JudgedAnnotation))).scalars().all()
    [mine] = [a for a in stored if a.asset_id == asset]
    assert [f["code"] for f in mine.findings] == ["duplicate_shape"] and mine.live


async def test_forbidden_classes_from_the_job_policy_send_the_asset_to_review(qc: Qc) -> None:
    job = await Job(qc, overlap=1).start()
    await job.set_policy(forbidden_together=[["car", "person"]])
    asset = await job.asset()
    await job.submit(job.answer(asset, 0, [box(10), box(400, cls="person")]))

    review = await job.review(asset)
    assert review is not None and review.state == "review"
    assert review.reasons[0].startswith("forbidden_classes:")


async def test_overlap_three_majority_is_accepted_with_the_consensus_label_set(qc: Qc) -> None:
    job = await Job(qc, overlap=3).start()
    asset = await job.asset()
    answers = [
        job.answer(asset, 0, [box(10)]),
        job.answer(asset, 1, [box(11)]),
        # the third annotator also saw a person nobody else drew
        job.answer(asset, 2, [box(12), box(400, 300, 20, 20, cls="person")]),
    ]
    await job.submit(answers[0], answers[1])
    review = await job.review(asset)
    assert review is not None and review.state == "waiting"
    assert await job.types(asset) == []

    await job.submit(answers[2])
    review = await job.review(asset)
    assert review is not None and review.state == "accepted"
    assert review.agreement is not None and review.agreement >= 0.7
    assert review.consensus is not None and review.consensus["left_out_shapes"] == 1
    labels = await job.accepted(asset)
    assert labels is not None
    [car] = labels.shapes
    assert car["class"] == "car" and abs(car["bbox"]["x"] - 11) < 1e-9
    assert sorted(labels.annotation_ids) == sorted(a.payload.annotation_id for a in answers)
    consensus, accepted = await job.events(asset)
    assert consensus["type"] == CONSENSUS and consensus["data"]["passed"] is True
    assert consensus["data"]["annotators"] == ["worker-0", "worker-1", "worker-2"]
    assert accepted["type"] == ACCEPTED and accepted["data"]["agreement"] == review.agreement


async def test_one_run_holding_every_replica_and_a_redelivery_decides_once(qc: Qc) -> None:
    job = await Job(qc, overlap=3).start()
    asset, other = await job.asset(), await job.asset()
    answers = [job.answer(asset, replica, [box(10 + replica)]) for replica in range(3)]
    alone = job.answer(other, 0, [box(50)])
    await job.submit_together(answers[0], alone, answers[1], answers[0], answers[2])

    review = await job.review(asset)
    assert review is not None and review.state == "accepted"
    assert await job.types(asset) == [CONSENSUS, ACCEPTED]
    waiting = await job.review(other)
    assert waiting is not None and waiting.state == "waiting"


async def test_overlap_two_disagreeing_goes_to_review_with_the_consensus(qc: Qc) -> None:
    job = await Job(qc, overlap=2).start()
    asset = await job.asset()
    # both annotators call themselves the same: told apart by replica
    await job.submit(
        job.answer(asset, 0, [box(10)], annotator="worker"),
        job.answer(asset, 1, [box(500, 300)], annotator="worker"),
    )
    review = await job.review(asset)
    assert review is not None and review.state == "review"
    assert review.agreement == 0.0
    assert review.reasons[0].startswith("agreement 0.000 is below")
    assert review.label_set == []
    assert await job.accepted(asset) is None
    [consensus] = await job.events(asset)
    assert consensus["type"] == CONSENSUS
    assert consensus["data"]["passed"] is False
    assert consensus["data"]["annotators"] == ["worker#0", "worker#1"]
    assert consensus["data"]["unmatched_shapes"] == 2


async def test_agreeing_answers_with_a_finding_still_go_to_review(qc: Qc) -> None:
    job = await Job(qc, overlap=2).start()
    asset = await job.asset()
    await job.submit(job.answer(asset, 0, [box(10)]), job.answer(asset, 1, [box(10), box(10.2)]))
    review = await job.review(asset)
    assert review is not None and review.state == "review"
    assert any(r.startswith("duplicate_shape:") for r in review.reasons)


async def test_gold_answer_is_scored_and_never_becomes_a_label(qc: Qc) -> None:
    job = await Job(qc, overlap=1).start()
    gold = [box(10), box(300, cls="person")]
    asset = await job.asset(gold_shapes=gold)
    answer = job.answer(asset, 0, [box(12), box(600, cls="person")], gold=True)
    await job.submit(answer)

    assert await job.review(asset) is None
    assert await job.accepted(asset) is None
    async with qc.units.read() as session:
        stored = await session.get(JudgedAnnotation, answer.payload.annotation_id)
    assert stored is not None and stored.gold_score is not None
    score = stored.gold_score
    assert (score["true_positives"], score["false_positives"], score["false_negatives"]) == (
        1,
        1,
        1,
    )
    assert score["f1"] == 0.5
    [scored] = await job.events(asset)
    assert scored["type"] == GOLD
    assert scored["data"]["f1"] == 0.5 and scored["data"]["annotation_id"] == str(
        answer.payload.annotation_id
    )


async def test_a_redelivered_answer_changes_nothing(qc: Qc) -> None:
    job = await Job(qc, overlap=1).start()
    asset = await job.asset()
    answer = job.answer(asset, 0, [box(10)])
    await job.submit(answer, answer)
    # the same answer announced again under another event id is not judged twice either
    await job.submit(event(answer.payload))

    assert await job.types(asset) == [ACCEPTED]
    async with qc.units.read() as session:
        count = await session.scalar(select(func.count()).where(JudgedAnnotation.asset_id == asset))
    assert count == 1


async def test_a_newer_version_replaces_the_older_one(qc: Qc) -> None:
    job = await Job(qc, overlap=1).start()
    asset = await job.asset()
    first = job.answer(asset, 0, [box(10), box(10.5)])
    second = job.answer(asset, 0, [box(10)], version=2, received_at=T0 + timedelta(minutes=1))
    await job.submit(first)
    review = await job.review(asset)
    assert review is not None and review.state == "review"

    await job.submit(second)
    review = await job.review(asset)
    assert review is not None and review.state == "accepted"
    labels = await job.accepted(asset)
    assert labels is not None and labels.annotation_ids == [second.payload.annotation_id]
    async with qc.units.read() as session:
        old = await session.get(JudgedAnnotation, first.payload.annotation_id)
    assert old is not None and not old.live


def withdrawal(answer: Event[AnnotationSubmittedV1]) -> Event[AnnotationWithdrawnV1]:
    a = answer.payload
    return event(
        AnnotationWithdrawnV1(
            annotation_id=a.annotation_id,
            task_id=a.task_id,
            job_id=a.job_id,
            asset_id=a.asset_id,
            vendor_id=a.vendor_id,
            annotator_id=a.annotator_id,
            version=a.version,
            vendor_ref="7",
            reason="deleted in Label Studio",
            withdrawn_at=T0,
        )
    )


async def test_withdrawn_answer_stops_counting_but_an_accepted_asset_stays_accepted(
    qc: Qc,
) -> None:
    job = await Job(qc, overlap=2).start()
    waiting, decided = await job.asset(), await job.asset()
    early = job.answer(waiting, 0, [box(10)])
    await job.submit(early)
    await judging.withdraw_answer(qc, withdrawal(early))
    review = await job.review(waiting)
    assert review is not None and review.state == "waiting" and review.first_answer_at is None
    # a replacement answer and its sibling are judged without the withdrawn one
    await job.submit(job.answer(waiting, 0, [box(11)]), job.answer(waiting, 1, [box(11)]))
    review = await job.review(waiting)
    assert review is not None and review.state == "accepted"

    both = [job.answer(decided, 0, [box(10)]), job.answer(decided, 1, [box(10)])]
    await job.submit(*both)
    await judging.withdraw_answer(qc, withdrawal(both[0]))
    review = await job.review(decided)
    assert review is not None and review.state == "accepted"
    assert await job.accepted(decided) is not None


async def test_withdrawing_from_review_waits_for_the_missing_replica(qc: Qc) -> None:
    job = await Job(qc, overlap=2).start()
    asset = await job.asset()
    answers = [job.answer(asset, 0, [box(10)]), job.answer(asset, 1, [box(500, 300)])]
    await job.submit(*answers)
    await judging.withdraw_answer(qc, withdrawal(answers[1]))
    review = await job.review(asset)
    assert review is not None and review.state == "waiting" and review.reasons == []


async def test_answers_before_the_job_is_known_are_judged_when_it_is(qc: Qc) -> None:
    job = await Job(qc, overlap=2, announce_job=False).start()
    asset = await job.asset()
    await job.submit(job.answer(asset, 0, [box(10)]), job.answer(asset, 1, [box(10)]))
    review = await job.review(asset)
    assert review is not None and review.state == "waiting"

    await job.announce()
    review = await job.review(asset)
    assert review is not None and review.state == "accepted"


async def test_rework_answer_is_judged_again(qc: Qc) -> None:
    job = await Job(qc, overlap=1).start()
    asset = await job.asset()
    await job.submit(job.answer(asset, 0, [box(10), box(10.5)]))
    task_id = job.tasks[(asset, 0)]
    async with qc.units.begin() as uow:
        review = await uow.session.get(AssetReview, (job.job_id, asset))
        assert review is not None
        await decisions.send_back(uow, review, [task_id], decided_by="reviewer", comment="one box")
    await judging.set_aside_reworked(
        qc,
        event(
            TaskReworkSentV1(
                task_id=task_id,
                job_id=job.job_id,
                asset_id=asset,
                vendor_id=job.vendor_id,
                comment="one box",
                requested_by="reviewer",
            )
        ),
    )
    review = await job.review(asset)
    assert review is not None and review.state == "rework"
    redone = job.answer(asset, 0, [box(10)], received_at=T0 + timedelta(hours=1))
    await job.submit(redone)
    review = await job.review(asset)
    assert review is not None and review.state == "accepted" and review.round == 1
    labels = await job.accepted(asset)
    assert labels is not None and labels.annotation_ids == [redone.payload.annotation_id]


async def test_sweep_runs_consensus_on_what_is_in_after_the_timeout(qc: Qc) -> None:
    job = await Job(qc, overlap=3).start()
    await job.set_policy(consensus_timeout_seconds=60)
    two, one, fresh = await job.asset(), await job.asset(), await job.asset()
    await job.submit(job.answer(two, 0, [box(10)]), job.answer(two, 1, [box(10)]))
    await job.submit(job.answer(one, 0, [box(10)]))
    await job.submit(job.answer(fresh, 0, [box(10)], received_at=T0 + timedelta(minutes=5)))

    swept = await sweep.sweep_consensus_timeouts(qc, now=T0 + timedelta(minutes=2))
    assert swept == 2
    review = await job.review(two)
    assert review is not None and review.state == "accepted"
    consensus, _ = await job.events(two)
    assert consensus["type"] == CONSENSUS and consensus["data"]["timed_out"] is True
    review = await job.review(one)
    assert review is not None and review.state == "review"
    assert review.reasons == [judging.TIMEOUT_REASON]
    review = await job.review(fresh)
    assert review is not None and review.state == "waiting"
    assert await sweep.sweep_consensus_timeouts(qc, now=T0 + timedelta(minutes=2)) == 0


async def test_asset_mirror_keeps_ingest_and_clean_facts_in_either_order(qc: Qc) -> None:
    dataset_id, asset_id = uuid.uuid4(), uuid.uuid4()
    cleaned = AssetCleanedV1(
        asset_id=asset_id,
        dataset_id=dataset_id,
        dataset_slug=f"ds-{dataset_id.hex[:8]}",
        media_type="image/png",
        metrics={"width": 640.0, "height": 480.0},
        policy_version=1,
    )
    ingested = AssetIngestedV1(
        asset_id=asset_id,
        dataset_id=dataset_id,
        dataset_slug=cleaned.dataset_slug,
        sha256="a" * 64,
        size_bytes=10,
        media_type="image/png",
        filename="cat.png",
        source="upload",
        uploaded_by="t",
        bucket="conveyor-raw",
        object_key="k",
    )
    await mirror.record_cleaned(qc, [event(cleaned)])
    await mirror.record_ingested(qc, [event(ingested)])
    async with qc.units.read() as session:
        asset = await session.get(KnownAsset, asset_id)
        dataset = await session.get(KnownDataset, dataset_id)
    assert asset is not None and dataset is not None
    assert (asset.sha256, asset.filename, asset.width, asset.height) == (
        "a" * 64,
        "cat.png",
        640,
        480,
    )
    assert dataset.slug == cleaned.dataset_slug
