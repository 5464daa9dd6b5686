"""Vendor scorecards in process on the real Postgres: each fact adds to its vendor's hour once,
figures come with the counts they rest on, windows and scopes select hours, and counting facts
in pieces gives the same scorecard as counting them all at once."""

from __future__ import annotations

import math
import random
import statistics
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.qc.app import create_qc_app
from services.qc.context import Qc
from services.qc.domain import scorecards as domain
from services.qc.domain.gold import GoldScore, score_against_gold
from services.qc.domain.ratios import Mean, Ratio
from services.qc.domain.scorecards import GROWTH
from services.qc.models import AssetReview, JudgedAnnotation, QcJob
from services.qc.use_cases import decisions, scorecards
from services.qc.use_cases.scorecards import (
    Counted,
    count_agreement,
    count_expired,
    count_gold,
    count_submitted,
    record_expired,
)
from shared.auth import Principal, Role
from shared.errors import ApiError
from shared.events import TASK_EXPIRED, Envelope, TaskExpiredV1
from shared.routing import Event
from tests.integration.test_qc_judging import Job as JudgedJob
from tests.integration.test_qc_judging import box as judged_box

VIEWER = Principal("viewer-key", "viewer", Role.viewer)
T0 = datetime(2026, 3, 2, 9, 15, tzinfo=UTC)


def _box(x: float, cls: str = "car") -> dict[str, Any]:
    return {"class": cls, "type": "bbox", "bbox": {"x": x, "y": 0, "width": 10, "height": 10}}


async def _card(qc: Qc, vendor_id: uuid.UUID, **window: Any) -> scorecards.VendorCard:
    cards = {c.vendor_id: c for c in await scorecards.scorecards(qc, VIEWER, **_w(window))}
    return cards[vendor_id]


def _w(window: dict[str, Any]) -> dict[str, Any]:
    return {"job_id": None, "since": None, "until": None, **window}


async def _add_job(qc: Qc, dataset_id: uuid.UUID | None = None) -> QcJob:
    job = QcJob(
        id=uuid.uuid4(),
        name="job",
        dataset_id=dataset_id or uuid.uuid4(),
        ontology_id=uuid.uuid4(),
        ontology_version=1,
        overlap=2,
        policy={},
    )
    async with qc.units.begin() as uow:
        uow.session.add(job)
    return job


async def _add_answer(qc: Qc, job: QcJob, vendor_id: uuid.UUID, asset_id: uuid.UUID) -> Any:
    answer = JudgedAnnotation(
        id=uuid.uuid4(),
        task_id=uuid.uuid4(),
        job_id=job.id,
        asset_id=asset_id,
        dataset_id=job.dataset_id,
        vendor_id=vendor_id,
        annotator_id="someone",
        replica=0,
        gold=False,
        shapes=[_box(0)],
        version=1,
        live=True,
        findings=[],
        received_at=T0,
    )
    async with qc.units.begin() as uow:
        uow.session.add(answer)
    return answer


async def test_submitted_answers_give_throughput_and_bucketed_turnaround(qc: Qc) -> None:
    vendor, job = uuid.uuid4(), uuid.uuid4()
    lead_times = [30.0, 60.0, 90.0, 600.0, None]
    async with qc.units.begin() as uow:
        for i, lead in enumerate(lead_times):
            await count_submitted(uow, vendor, job, T0 + timedelta(minutes=20 * i), lead)

    card = await _card(qc, vendor)

    assert card.counters.submitted == 5
    assert card.counters.lead_time_count == 4
    # five answers over 09:15 .. 10:35: two hours with answers
    assert card.figures.active_hours == 2
    assert card.figures.throughput_per_hour.value == 2.5
    assert card.figures.throughput_per_hour.count == 5
    assert card.figures.turnaround_mean_seconds.value == 195.0
    assert card.figures.turnaround_mean_seconds.count == 4
    p50 = card.figures.turnaround_p50_seconds
    p95 = card.figures.turnaround_p95_seconds
    assert p50.count == p95.count == 4
    assert p50.value is not None and 60.0 <= p50.value < 60.0 * GROWTH
    assert p95.value is not None and 600.0 <= p95.value < 600.0 * GROWTH


async def test_gold_scores_add_up_as_pooled_counts(qc: Qc) -> None:
    vendor, job = uuid.uuid4(), uuid.uuid4()
    perfect = score_against_gold([_box(0)], [_box(0)])
    # one box found, one drawn where there is none, one missed
    partial = score_against_gold([_box(0), _box(100)], [_box(0), _box(50)])
    async with qc.units.begin() as uow:
        await count_gold(uow, vendor, job, T0, perfect)
        await count_gold(uow, vendor, job, T0 + timedelta(hours=1), partial)

    figures = (await _card(qc, vendor)).figures

    tp = perfect.true_positives + partial.true_positives
    fp = perfect.false_positives + partial.false_positives
    fn = perfect.false_negatives + partial.false_negatives
    assert (tp, fp, fn) == (2, 1, 1)
    assert figures.gold_f1.value == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert figures.gold_f1.count == 2
    assert figures.gold_precision.value == pytest.approx(2 / 3)
    assert figures.gold_recall.value == pytest.approx(2 / 3)
    assert figures.gold_mean_iou.value == pytest.approx(1.0)
    assert figures.gold_mean_iou.count == 2
    assert figures.gold_class_accuracy.value == 1.0
    assert figures.gold_class_accuracy.count == 2


async def test_agreement_is_the_mean_over_compared_answers(qc: Qc) -> None:
    job, a, b = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with qc.units.begin() as uow:
        await count_agreement(uow, job, T0, [(a, 0.9), (a, 0.9), (b, 0.9)])
        await count_agreement(uow, job, T0, [(a, 0.6), (b, 0.6)])

    assert (await _card(qc, a)).figures.agreement.value == pytest.approx(0.8)
    assert (await _card(qc, a)).figures.agreement.count == 3
    assert (await _card(qc, b)).figures.agreement.value == pytest.approx(0.75)
    assert (await _card(qc, b)).figures.agreement.count == 2


async def test_decisions_count_for_the_vendors_of_the_answers(qc: Qc) -> None:
    job = await _add_job(qc)
    a, b = uuid.uuid4(), uuid.uuid4()
    assets = [uuid.uuid4() for _ in range(3)]
    answers = {
        asset: [await _add_answer(qc, job, a, asset), await _add_answer(qc, job, b, asset)]
        for asset in assets
    }
    reviews = [
        AssetReview(job_id=job.id, asset_id=asset, dataset_id=job.dataset_id, state="review")
        for asset in assets
    ]
    async with qc.units.begin() as uow:
        uow.session.add_all(reviews)
    async with qc.units.begin() as uow:
        accepted, rejected, reworked = reviews
        ids = {asset: [x.id for x in answers[asset]] for asset in assets}
        await decisions.accept(
            uow, accepted, job, [], ids[assets[0]], decided_by="qc", automatic=True
        )
        await decisions.reject(uow, rejected, ids[assets[1]], decided_by="lead", comment="no")
        await decisions.send_back(
            uow, reworked, [answers[assets[2]][0].task_id], decided_by="lead", comment="redo"
        )

    card_a, card_b = await _card(qc, a), await _card(qc, b)

    assert (card_a.counters.accepted, card_a.counters.rejected, card_a.counters.rework) == (1, 1, 1)
    assert (card_b.counters.accepted, card_b.counters.rejected, card_b.counters.rework) == (1, 1, 0)
    assert card_a.figures.rework_rate.value == pytest.approx(1 / 3)
    assert card_a.figures.rework_rate.count == 3
    assert card_b.figures.rejection_rate.value == 0.5
    assert card_b.figures.acceptance_rate.count == 2


def _expired_event(vendor: uuid.UUID, job: uuid.UUID, at: datetime) -> Event[TaskExpiredV1]:
    payload = TaskExpiredV1(
        task_id=uuid.uuid4(),
        job_id=job,
        asset_id=uuid.uuid4(),
        vendor_id=vendor,
        attempt=1,
        requeued=True,
    )
    envelope = Envelope(
        id=str(uuid.uuid4()),
        source="/conveyor/labeling-dispatch",
        type=TASK_EXPIRED.name,
        time=at,
        data=payload.model_dump(mode="json"),
    )
    return Event(envelope, TASK_EXPIRED.topic.name, payload)


async def test_an_expired_lease_is_counted_once_however_often_it_is_delivered(qc: Qc) -> None:
    vendor, job = uuid.uuid4(), uuid.uuid4()
    events = [_expired_event(vendor, job, T0), _expired_event(vendor, job, T0)]
    async with qc.units.begin() as uow:
        await count_submitted(uow, vendor, job, T0, 10.0)

    await record_expired(qc, events)
    await record_expired(qc, events[:1])

    card = await _card(qc, vendor)
    assert card.counters.expired == 2
    assert card.figures.expired_rate.value == pytest.approx(2 / 3)
    assert card.figures.expired_rate.count == 3


async def test_a_window_counts_whole_hours_and_the_trend_goes_by_day(qc: Qc) -> None:
    vendor, job, other_job = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    async with qc.units.begin() as uow:
        for day in range(3):
            await count_submitted(uow, vendor, job, T0 + timedelta(days=day), 5.0)
            await count_submitted(uow, vendor, job, T0 + timedelta(days=day, hours=2), 5.0)
        await count_submitted(uow, vendor, other_job, T0, 5.0)
        await count_expired(uow, vendor, job, T0 + timedelta(days=1))

    # since 09:59 on day 1 still takes the hour from 09:00
    since = T0 + timedelta(days=1, minutes=44)
    card = await _card(qc, vendor, job_id=job, since=since)
    assert card.counters.submitted == 4
    assert card.counters.expired == 1

    midnight = T0.replace(hour=0, minute=0) + timedelta(days=2)
    total, trend = await scorecards.vendor_scorecard(qc, VIEWER, vendor, job, None, midnight)
    assert total.counters.submitted == 4
    assert [(d.day, d.counters.submitted, d.figures.active_hours) for d in trend] == [
        (T0.date(), 2, 2),
        ((T0 + timedelta(days=1)).date(), 2, 2),
    ]


async def test_a_key_limited_to_datasets_sees_only_their_jobs_vendors(qc: Qc) -> None:
    mine, theirs = await _add_job(qc), await _add_job(qc)
    a, b = uuid.uuid4(), uuid.uuid4()
    async with qc.units.begin() as uow:
        await count_submitted(uow, a, mine.id, T0, None)
        await count_submitted(uow, b, theirs.id, T0, None)
    scoped = Principal("k", "scoped", Role.viewer, frozenset({str(mine.dataset_id)}))

    cards = await scorecards.scorecards(qc, scoped, None, None, None)

    assert [c.vendor_id for c in cards] == [a]


async def test_an_unknown_vendor_is_404_and_a_backwards_window_400(qc: Qc) -> None:
    with pytest.raises(ApiError) as unknown:
        await scorecards.vendor_scorecard(qc, VIEWER, uuid.uuid4(), None, None, None)
    assert unknown.value.status == 404

    with pytest.raises(ApiError) as backwards:
        await scorecards.scorecards(qc, VIEWER, None, T0, T0 - timedelta(hours=1))
    assert backwards.value.status == 400


# Incremental == recompute ---------------------------------------------------------------


def _facts(rng: random.Random, vendors: list[uuid.UUID], n: int) -> list[tuple[str, Any]]:
    """A random stream of facts about ``vendors`` over three days (job filled in later)."""
    facts: list[tuple[str, Any]] = []
    for _ in range(n):
        vendor = rng.choice(vendors)
        at = T0 + timedelta(seconds=rng.uniform(0, 3 * 24 * 3600))
        kind = rng.choice(["submitted", "gold", "agreement", "decision", "expired"])
        if kind == "submitted":
            lead = None if rng.random() < 0.1 else rng.lognormvariate(5, 1.5)
            facts.append((kind, (vendor, at, lead)))
        elif kind == "gold":
            found = rng.randint(0, 5)
            score = GoldScore(
                true_positives=found,
                false_positives=rng.randint(0, 3),
                false_negatives=rng.randint(0, 3),
                iou=Mean(sum(rng.uniform(0.5, 1) for _ in range(found)), found),
                class_accuracy=Ratio(found, found + rng.randint(0, 2)),
                unscored_shapes=0,
            )
            facts.append((kind, (vendor, at, score)))
        elif kind == "agreement":
            facts.append((kind, (vendor, at, rng.random())))
        elif kind == "decision":
            facts.append((kind, (vendor, at, rng.choice(["accepted", "rejected", "rework"]))))
        else:
            facts.append((kind, (vendor, at)))
    return facts


async def _feed(qc: Qc, job: uuid.UUID, facts: list[tuple[str, Any]]) -> None:
    """Count ``facts`` for ``job`` in one unit of work, each through its use case."""
    async with qc.units.begin() as uow:
        for kind, fact in facts:
            if kind == "submitted":
                await count_submitted(uow, fact[0], job, fact[1], fact[2])
            elif kind == "gold":
                await count_gold(uow, fact[0], job, fact[1], fact[2])
            elif kind == "agreement":
                await count_agreement(uow, job, fact[1], [(fact[0], fact[2])])
            elif kind == "decision":
                one = domain.decision_tally(fact[2])
                await scorecards.count(uow, [Counted(fact[0], job, fact[1], one)])
            else:
                await count_expired(uow, fact[0], job, fact[1])


async def _feed_at_once(qc: Qc, job: uuid.UUID, facts: list[tuple[str, Any]]) -> None:
    """The same facts as :func:`_feed`, counted in one statement."""
    counted = []
    for kind, fact in facts:
        if kind == "submitted":
            tally = domain.submitted_tally(fact[2])
        elif kind == "gold":
            s = fact[2]
            tally = domain.gold_tally(
                s.true_positives, s.false_positives, s.false_negatives, s.iou, s.class_accuracy
            )
        elif kind == "agreement":
            tally = domain.agreement_tally(fact[2])
        elif kind == "decision":
            tally = domain.decision_tally(fact[2])
        else:
            tally = domain.Tally(expired=1)
        counted.append(Counted(fact[0], job, fact[1], tally))
    async with qc.units.begin() as uow:
        await scorecards.count(uow, counted)


async def test_counting_in_pieces_gives_the_scorecard_of_counting_at_once(qc: Qc) -> None:
    rng = random.Random(7)
    vendors = [uuid.uuid4() for _ in range(3)]
    facts = _facts(rng, vendors, 600)
    pieces, at_once = uuid.uuid4(), uuid.uuid4()

    shuffled = facts[:]
    rng.shuffle(shuffled)
    cuts = sorted(rng.sample(range(1, len(shuffled)), 9))
    for start, end in zip([0, *cuts], [*cuts, len(shuffled)], strict=True):
        await _feed(qc, pieces, shuffled[start:end])
    await _feed_at_once(qc, at_once, facts)

    for window in (
        {},
        {"since": T0 + timedelta(hours=30)},
        {"since": T0 + timedelta(hours=5), "until": T0 + timedelta(hours=50)},
    ):
        incremental = {c.vendor_id: c for c in await _cards(qc, pieces, window)}
        recomputed = {c.vendor_id: c for c in await _cards(qc, at_once, window)}
        assert incremental.keys() == recomputed.keys() == set(vendors)
        for vendor in vendors:
            assert incremental[vendor].counters == recomputed[vendor].counters
            assert incremental[vendor].figures == recomputed[vendor].figures
        for vendor in vendors:
            _check_against_the_facts(incremental[vendor], vendor, facts, window)


async def _cards(qc: Qc, job: uuid.UUID, window: dict[str, Any]) -> list[scorecards.VendorCard]:
    return await scorecards.scorecards(qc, VIEWER, **_w({"job_id": job, **window}))


def _check_against_the_facts(
    card: scorecards.VendorCard,
    vendor: uuid.UUID,
    facts: list[tuple[str, Any]],
    window: dict[str, Any],
) -> None:
    """The scorecard equals the figures computed straight from the facts in the window."""
    since = window.get("since")
    start = since.replace(minute=0, second=0, microsecond=0) if since else None
    until = window.get("until")

    def inside(at: datetime) -> bool:
        hour = at.replace(minute=0, second=0, microsecond=0)
        return (start is None or hour >= start) and (until is None or hour < until)

    mine = [(k, f) for k, f in facts if f[0] == vendor and inside(f[1])]
    leads = [f[2] for k, f in mine if k == "submitted" and f[2] is not None]
    golds = [f[2] for k, f in mine if k == "gold"]
    agreements = [f[2] for k, f in mine if k == "agreement"]
    decided = [f[2] for k, f in mine if k == "decision"]
    hours = {f[1].replace(minute=0, second=0, microsecond=0) for k, f in mine if k == "submitted"}
    figures = card.figures

    assert card.counters.submitted == sum(1 for k, _ in mine if k == "submitted")
    assert figures.active_hours == len(hours)
    assert figures.turnaround_mean_seconds.value == pytest.approx(statistics.fmean(leads))
    exact_p50 = sorted(leads)[math.ceil(0.5 * len(leads)) - 1]
    assert figures.turnaround_p50_seconds.value is not None
    assert exact_p50 <= figures.turnaround_p50_seconds.value < exact_p50 * GROWTH * 1.000001
    tp = sum(g.true_positives for g in golds)
    fp = sum(g.false_positives for g in golds)
    fn = sum(g.false_negatives for g in golds)
    assert figures.gold_f1.value == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert figures.gold_f1.count == len(golds)
    iou_count = sum(g.iou.count for g in golds)
    assert figures.gold_mean_iou.value == pytest.approx(
        math.fsum(g.iou.total for g in golds) / iou_count
    )
    assert figures.agreement.value == pytest.approx(statistics.fmean(agreements))
    assert figures.rework_rate.value == pytest.approx(decided.count("rework") / len(decided))
    assert card.counters.expired == sum(1 for k, _ in mine if k == "expired")


# Over HTTP -------------------------------------------------------------------------------


class _Keys:
    """Resolves the one viewer key the API tests use."""

    async def resolve(self, key: str) -> Principal | None:
        return VIEWER if key == "viewer" else None


@pytest.fixture
async def api(qc: Qc) -> AsyncIterator[httpx.AsyncClient]:
    """QC's app in process over the test's rolled-back sessions (its lifespan is not run)."""
    app = create_qc_app(qc.settings)
    app.state.settings = qc.settings
    app.state.qc = qc
    app.state.principal_resolver = _Keys()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://qc") as client:
        client.headers["X-API-Key"] = "viewer"
        yield client


async def test_scorecards_answer_every_figure_with_its_count(
    qc: Qc, api: httpx.AsyncClient
) -> None:
    vendor, job = uuid.uuid4(), uuid.uuid4()
    async with qc.units.begin() as uow:
        await count_submitted(uow, vendor, job, T0, 12.5)
        await count_agreement(uow, job, T0, [(vendor, 0.75)])

    listed = await api.get("/v1/scorecards", params={"job_id": str(job)})
    one = await api.get(f"/v1/vendors/{vendor}/scorecard", params={"since": "2026-03-02T09:00"})

    assert listed.status_code == 200, listed.text
    [card] = listed.json()["items"]
    assert card["vendor_id"] == str(vendor)
    assert card["figures"]["agreement"] == {"value": 0.75, "count": 1}
    assert card["figures"]["gold_f1"] == {"value": None, "count": 0}
    assert card["counters"]["lead_time_sum"] == "12.500000000"
    assert one.status_code == 200, one.text
    assert one.json()["figures"]["throughput_per_hour"] == {"value": 1.0, "count": 1}
    assert [d["day"] for d in one.json()["trend"]] == ["2026-03-02"]


async def test_scorecards_refuse_no_key_an_unknown_vendor_and_a_backwards_window(
    api: httpx.AsyncClient,
) -> None:
    anonymous = await api.get("/v1/scorecards", headers={"X-API-Key": ""})
    unknown = await api.get(f"/v1/vendors/{uuid.uuid4()}/scorecard")
    backwards = await api.get(
        "/v1/scorecards", params={"since": "2026-03-02T10:00Z", "until": "2026-03-02T09:00Z"}
    )
    far = await api.get("/v1/scorecards", params={"since": "0001-01-01T00:00:00+05:00"})
    epoch = await api.get("/v1/scorecards", params={"until": "0.5"})

    assert anonymous.status_code == 401
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "vendor_not_found"
    assert backwards.status_code == 400
    assert far.status_code in (200, 400)
    assert epoch.status_code == 422


# Through judging -------------------------------------------------------------------------


async def test_judged_answers_count_once_with_gold_agreement_and_acceptance(qc: Qc) -> None:
    job = await JudgedJob(qc, overlap=2).start()
    asset, gold_asset = await job.asset(), await job.asset(gold_shapes=[judged_box(10)])
    first, second = job.answer(asset, 0, [judged_box(10)]), job.answer(asset, 1, [judged_box(10)])
    gold = job.answer(gold_asset, 0, [judged_box(10)], gold=True)

    await job.submit(first, first, second, gold)
    await job.submit(job.answer(gold_asset, 0, [judged_box(10)], gold=True, version=2))

    card = await _card(qc, job.vendor_id, job_id=job.job_id)
    assert card.counters.submitted == 3
    assert card.figures.turnaround_mean_seconds == domain.Figure(12.0, 3)
    assert card.figures.gold_f1 == domain.Figure(1.0, 1)
    assert card.figures.agreement == domain.Figure(1.0, 2)
    assert card.figures.acceptance_rate == domain.Figure(1.0, 2)
