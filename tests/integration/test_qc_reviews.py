"""The review queue and the job QC policy in process on the real Postgres: lists and details as
reviewers see them, each decision made once (409 after), through the decisions module with its
event, and a policy stored as set and read with the service's defaults filled in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from services.qc.context import Qc
from services.qc.domain.consensus import ConsensusPolicy
from services.qc.models import (
    AcceptedLabels,
    AssetReview,
    JudgedAnnotation,
    KnownDataset,
    OntologyVersion,
    QcJob,
    QcTask,
    outbox,
)
from services.qc.use_cases import policies, reviews
from services.qc.use_cases.judging import JudgingPolicy
from shared.auth import Principal, Role
from shared.errors import ApiError

RITA = Principal("rita-key", "rita", Role.uploader)
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def box(x: float, cls: str = "car") -> dict[str, Any]:
    return {"class": cls, "type": "bbox", "bbox": {"x": x, "y": 10, "width": 50, "height": 40}}


class World:
    """A dataset, a job with overlap 2 over it, and assets with answers and reviews."""

    def __init__(self, qc: Qc) -> None:
        self.qc = qc
        self.dataset_id = uuid.uuid4()
        self.slug = f"cars-{self.dataset_id.hex[:8]}"
        self.job_id = uuid.uuid4()
        self.ontology_id = uuid.uuid4()
        self.vendors = [uuid.uuid4(), uuid.uuid4()]

    async def build(self) -> World:
        async with self.qc.units.begin() as uow:
            uow.session.add(KnownDataset(id=self.dataset_id, slug=self.slug))
            uow.session.add(
                OntologyVersion(
                    ontology_id=self.ontology_id, version=1, name="street",
                    classes=["car", "person", "road"],
                )
            )  # fmt: skip
            uow.session.add(self._job(self.job_id))
        return self

    def _job(self, job_id: uuid.UUID) -> QcJob:
        return QcJob(
            id=job_id, name="job", dataset_id=self.dataset_id, ontology_id=self.ontology_id,
            ontology_version=1, overlap=2, policy={},
        )  # fmt: skip

    async def other_job(self) -> uuid.UUID:
        job_id = uuid.uuid4()
        async with self.qc.units.begin() as uow:
            uow.session.add(self._job(job_id))
        return job_id

    async def asset(
        self,
        state: str = "review",
        *,
        job_id: uuid.UUID | None = None,
        label_set: list[dict[str, Any]] | None = None,
        answers: int = 2,
        updated_at: datetime = T0,
    ) -> uuid.UUID:
        """An asset with ``answers`` live answers (one superseded answer too) and its review."""
        job_id = job_id or self.job_id
        asset_id = uuid.uuid4()
        async with self.qc.units.begin() as uow:
            for replica in range(2):
                task_id = uuid.uuid4()
                uow.session.add(
                    QcTask(
                        id=task_id, job_id=job_id, asset_id=asset_id, replica=replica, gold=False
                    )
                )
                if replica >= answers:
                    continue
                for version in (1, 2) if replica == 0 else (1,):
                    uow.session.add(
                        JudgedAnnotation(
                            id=uuid.uuid4(), task_id=task_id, job_id=job_id, asset_id=asset_id,
                            dataset_id=self.dataset_id, vendor_id=self.vendors[replica],
                            annotator_id=f"ann-{replica}", replica=replica, gold=False,
                            shapes=[box(10.0 + replica + version)], version=version,
                            live=version == (2 if replica == 0 else 1),
                            findings=[], received_at=T0 + timedelta(minutes=replica),
                        )
                    )  # fmt: skip
            uow.session.add(
                AssetReview(
                    job_id=job_id, asset_id=asset_id, dataset_id=self.dataset_id, state=state,
                    round=0, reasons=["agreement 0.41 is below the job's 0.7"], agreement=0.41,
                    consensus={"agreement": 0.41}, label_set=label_set, first_answer_at=T0,
                    updated_at=updated_at,
                )
            )  # fmt: skip
        return asset_id

    async def events(self, kind: str) -> list[dict[str, Any]]:
        async with self.qc.units.read() as session:
            rows = (await session.execute(select(outbox).order_by(outbox.c.id))).all()
        return [
            {**r.envelope["data"], "actor": r.envelope["actor"]}
            for r in rows
            if r.envelope["type"] == f"conveyor.annotation.{kind}.v1"
            and r.envelope["data"]["job_id"] == str(self.job_id)
        ]

    def scoped(self, *datasets: uuid.UUID) -> Principal:
        return Principal("scoped-key", "sam", Role.uploader, frozenset(str(d) for d in datasets))


@pytest.fixture
async def world(qc: Qc) -> World:
    return await World(qc).build()


async def listed(world: World, principal: Principal = RITA, **where: Any) -> list[uuid.UUID]:
    where = {"job_id": world.job_id, "state": "review", "dataset": None, **where}
    rows, _ = await reviews.list_reviews(world.qc, principal, 50, None, **where)
    return [r.asset_id for r in rows]


# --------------------------------------------------------------------------- reading


async def test_the_queue_lists_reviews_in_a_state_longest_unchanged_first(world: World) -> None:
    late = await world.asset(updated_at=T0 + timedelta(hours=1))
    early = await world.asset(updated_at=T0)
    accepted = await world.asset("accepted")
    elsewhere = await world.asset(job_id=await world.other_job())

    assert await listed(world) == [early, late]
    assert await listed(world, state="accepted") == [accepted]
    assert set(await listed(world, job_id=None, dataset=world.slug)) >= {early, late, elsewhere}
    assert await listed(world, job_id=None, dataset=str(world.dataset_id), state="accepted") == [
        accepted
    ]


async def test_the_queue_pages_with_its_cursor(world: World) -> None:
    # same time for all: the position must still tell them apart (asset, then job)
    made = [await world.asset() for _ in range(5)]
    seen, cursor = [], None
    while True:
        rows, cursor = await reviews.list_reviews(
            world.qc, RITA, 2, cursor, job_id=world.job_id, state="review", dataset=None
        )
        seen += [r.asset_id for r in rows]
        if cursor is None:
            break
    assert seen == sorted(made)
    for forged in ("nope", "bm9wZQ.zz", ""):
        with pytest.raises(ApiError) as refused:
            await reviews.list_reviews(
                world.qc, RITA, 2, forged or ".", job_id=None, state=None, dataset=None
            )
        assert (refused.value.status, refused.value.code) == (400, "invalid_cursor")


async def test_keys_of_other_datasets_see_no_review(world: World) -> None:
    asset = await world.asset()
    stranger = world.scoped(uuid.uuid4())
    assert await listed(world, stranger) == []
    assert await listed(world, world.scoped(world.dataset_id)) == [asset]
    for call in (
        reviews.review_detail(world.qc, stranger, world.job_id, asset),
        reviews.list_reviews(
            world.qc, stranger, 5, None, job_id=None, state=None, dataset=world.slug
        ),
        reviews.reject_review(world.qc, stranger, world.job_id, asset, comment="no"),
    ):
        with pytest.raises(ApiError) as refused:
            await call
        assert refused.value.status == 404
    assert await world.events("rejected") == []


async def test_a_review_shows_every_live_answer_the_consensus_and_the_tasks(world: World) -> None:
    asset = await world.asset(label_set=[box(11.0)])

    found = await reviews.review_detail(world.qc, RITA, world.job_id, asset)

    assert found.review.state == "review" and found.review.consensus == {"agreement": 0.41}
    assert [(a.replica, a.version, a.annotator_id) for a in found.annotations] == [
        (0, 2, "ann-0"),
        (1, 1, "ann-1"),
    ]
    assert [a.vendor_id for a in found.annotations] == world.vendors
    assert [t.replica for t in found.tasks] == [0, 1]
    with pytest.raises(ApiError) as missing:
        await reviews.review_detail(world.qc, RITA, world.job_id, uuid.uuid4())
    assert (missing.value.status, missing.value.code) == (404, "review_not_found")


# --------------------------------------------------------------------------- deciding


async def test_accepting_takes_the_consensus_once(world: World) -> None:
    asset = await world.asset(label_set=[box(11.0)])

    found = await reviews.accept_review(
        world.qc, RITA, world.job_id, asset, shapes=None, comment="fine"
    )

    assert (found.review.state, found.review.decided_by, found.review.comment) == (
        "accepted",
        "rita",
        "fine",
    )
    async with world.qc.units.read() as session:
        labels = await session.get(AcceptedLabels, asset)
    assert labels is not None and labels.shapes == [box(11.0)] and labels.accepted_by == "rita"
    assert set(labels.annotation_ids) == {a.id for a in found.annotations}
    (event,) = await world.events("accepted")
    assert (event["decided_by"], event["automatic"], event["actor"]) == ("rita", False, "rita")
    for decide in (
        reviews.accept_review(world.qc, RITA, world.job_id, asset, shapes=None, comment=None),
        reviews.reject_review(world.qc, RITA, world.job_id, asset, comment="no"),
        reviews.send_back_review(
            world.qc, RITA, world.job_id, asset, comment="redo", task_ids=None, vendor_id=None
        ),
    ):
        with pytest.raises(ApiError) as refused:
            await decide
        assert (refused.value.status, refused.value.code) == (409, "review_not_open")
    assert len(await world.events("accepted")) == 1


async def test_a_reviewer_may_accept_shapes_of_their_own(world: World) -> None:
    asset = await world.asset(label_set=[box(11.0)])
    mine = [box(30.0), box(90.0, "person")]

    await reviews.accept_review(world.qc, RITA, world.job_id, asset, shapes=mine, comment=None)

    (event,) = await world.events("accepted")
    assert event["shapes"] == mine


@pytest.mark.parametrize(
    "shapes",
    [
        [box(1.0, "truck")],
        [{"class": "car"}],
        [{"class": "car", "type": "bbox", "bbox": {"x": 1, "y": 1, "width": 0, "height": 3}}],
        [{"class": "car", "type": "bbox", "bbox": {"x": "1", "y": 1, "width": 2, "height": 3}}],
        [{"class": "road", "type": "polygon", "points": [[0, 0], [1, 1]]}],
        [{**box(1.0), "note": "a\x00b"}],
    ],
)
async def test_shapes_an_export_could_not_write_are_refused(
    world: World, shapes: list[dict[str, Any]]
) -> None:
    asset = await world.asset(label_set=[box(11.0)])
    with pytest.raises(ApiError) as refused:
        await reviews.accept_review(
            world.qc, RITA, world.job_id, asset, shapes=shapes, comment=None
        )
    assert (refused.value.status, refused.value.code) == (422, "invalid_shapes")
    assert (
        await reviews.review_detail(world.qc, RITA, world.job_id, asset)
    ).review.state == "review"


async def test_without_a_consensus_only_a_single_answer_can_be_accepted_as_is(
    world: World,
) -> None:
    two = await world.asset(label_set=None)
    one = await world.asset(label_set=None, answers=1)

    with pytest.raises(ApiError) as refused:
        await reviews.accept_review(world.qc, RITA, world.job_id, two, shapes=None, comment=None)
    assert (refused.value.status, refused.value.code) == (409, "no_label_set")
    await reviews.accept_review(world.qc, RITA, world.job_id, one, shapes=None, comment=None)

    (event,) = await world.events("accepted")
    assert event["shapes"] == [box(12.0)]


async def test_rejecting_closes_the_review_with_the_comment(world: World) -> None:
    asset = await world.asset()

    found = await reviews.reject_review(world.qc, RITA, world.job_id, asset, comment="blurry")

    assert found.review.state == "rejected"
    (event,) = await world.events("rejected")
    assert (event["comment"], event["decided_by"]) == ("blurry", "rita")
    assert set(event["annotation_ids"]) == {str(a.id) for a in found.annotations}


async def test_rework_sends_every_answered_task_back_by_default(world: World) -> None:
    asset = await world.asset()

    found = await reviews.send_back_review(
        world.qc, RITA, world.job_id, asset, comment="missing car", task_ids=None, vendor_id=None
    )

    assert (found.review.state, found.review.round) == ("rework", 1)
    (event,) = await world.events("rework_requested")
    assert sorted(event["task_ids"]) == sorted(str(a.task_id) for a in found.annotations)
    assert (event["comment"], event["requested_by"], event["vendor_id"], event["round"]) == (
        "missing car",
        "rita",
        None,
        1,
    )


async def test_rework_of_chosen_tasks_to_another_vendor(world: World) -> None:
    asset = await world.asset()
    detail = await reviews.review_detail(world.qc, RITA, world.job_id, asset)
    second = detail.annotations[1].task_id
    elsewhere = uuid.uuid4()

    with pytest.raises(ApiError) as refused:
        await reviews.send_back_review(
            world.qc, RITA, world.job_id, asset, comment="x", task_ids=[uuid.uuid4()],
            vendor_id=None,
        )  # fmt: skip
    assert (refused.value.status, refused.value.code) == (422, "unknown_task")
    await reviews.send_back_review(
        world.qc, RITA, world.job_id, asset, comment="x", task_ids=[second, second],
        vendor_id=elsewhere,
    )  # fmt: skip

    (event,) = await world.events("rework_requested")
    assert (event["task_ids"], event["vendor_id"]) == ([str(second)], str(elsewhere))


async def test_waiting_and_reworked_assets_cannot_be_decided(world: World) -> None:
    for state in ("waiting", "rework", "rejected"):
        asset = await world.asset(state)
        with pytest.raises(ApiError) as refused:
            await reviews.accept_review(
                world.qc, RITA, world.job_id, asset, shapes=None, comment=None
            )
        assert refused.value.status == 409 and refused.value.details == {"state": state}


# --------------------------------------------------------------------------- policy


async def test_a_job_policy_reads_as_the_defaults_until_set(world: World) -> None:
    view = await policies.job_policy(world.qc, RITA, world.job_id)
    settings = world.qc.settings
    assert view.policy == JudgingPolicy(
        ConsensusPolicy(settings.default_iou_threshold, settings.default_min_agreement),
        settings.default_consensus_timeout_seconds,
        (),
    )
    assert view.set_by_job == []


async def test_setting_a_policy_stores_only_what_was_chosen(world: World) -> None:
    chosen = {
        "iou_threshold": 0.6,
        "forbidden_together": [["road", "car"], ["car", "road"], ["person", "car"]],
    }
    view = await policies.set_job_policy(world.qc, RITA, world.job_id, chosen)

    assert view.policy.consensus.iou_threshold == 0.6
    assert view.policy.consensus.min_agreement == world.qc.settings.default_min_agreement
    assert view.policy.forbidden_together == (("car", "person"), ("car", "road"))
    assert view.set_by_job == ["iou_threshold", "forbidden_together"]
    async with world.qc.units.read() as session:
        job = await session.get(QcJob, world.job_id)
    assert job is not None and job.policy == {
        "iou_threshold": 0.6,
        "forbidden_together": [["car", "person"], ["car", "road"]],
    }
    again = await policies.set_job_policy(world.qc, RITA, world.job_id, {"min_agreement": 0.2})
    assert (again.policy.consensus.iou_threshold, again.set_by_job) == (
        world.qc.settings.default_iou_threshold,
        ["min_agreement"],
    )


@pytest.mark.parametrize(
    ("pairs", "code"),
    [([["car", "truck"]], "unknown_class"), ([["car", "car"]], "invalid_policy")],
)
async def test_a_policy_naming_classes_the_job_lacks_is_refused(
    world: World, pairs: list[list[str]], code: str
) -> None:
    with pytest.raises(ApiError) as refused:
        await policies.set_job_policy(world.qc, RITA, world.job_id, {"forbidden_together": pairs})
    assert (refused.value.status, refused.value.code) == (422, code)
    assert (await policies.job_policy(world.qc, RITA, world.job_id)).set_by_job == []


async def test_policies_of_unknown_or_hidden_jobs_are_404(world: World) -> None:
    for principal, job_id in ((RITA, uuid.uuid4()), (world.scoped(uuid.uuid4()), world.job_id)):
        for call in (
            policies.job_policy(world.qc, principal, job_id),
            policies.set_job_policy(world.qc, principal, job_id, {}),
        ):
            with pytest.raises(ApiError) as refused:
                await call
            assert (refused.value.status, refused.value.code) == (404, "job_not_found")
