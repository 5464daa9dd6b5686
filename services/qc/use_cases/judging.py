"""Every submitted annotation judged as it arrives, and each asset decided when its answers are in.

An answer is checked (structural findings) and stored; a newer version of a task's answer
replaces the older one as the task's live answer. A gold task's answer is scored against the
known answer and goes no further: gold never becomes a label. Any other answer opens (or
joins) its asset's review in the job, and the asset is evaluated:

- overlap 1: an answer without findings is accepted as it is; one with findings waits for a
  person (state ``review``, the findings as reasons);
- overlap N >= 2: once N replicas have answered (or the job's consensus timeout has passed, see
  sweep.py), consensus compares the annotators; when it passes and no answer has findings the
  consensus label set is accepted, otherwise a person reviews it.

An accepted or rejected asset stays decided: later answers are stored, not judged again. An
asset sent back for rework is judged again as its new answers arrive (the reworked tasks' old
answers stopped counting when labeling-dispatch sent them back).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.qc.context import ACTOR, Qc
from services.qc.domain.checks import Finding, check_annotation
from services.qc.domain.consensus import (
    AssetConsensus,
    ConsensusPolicy,
    compute_consensus,
    rater_names,
)
from services.qc.domain.gold import GoldScore, score_against_gold
from services.qc.models import AssetReview, JudgedAnnotation, QcJob
from services.qc.repository import annotations as annotations_repo
from services.qc.repository import mirror as mirror_repo
from services.qc.repository import reviews as reviews_repo
from services.qc.settings import QcSettings
from services.qc.use_cases import decisions, scorecards
from shared.events import (
    AnnotationSubmittedV1,
    AnnotationWithdrawnV1,
    ConsensusComputedV1,
    GoldScoredV1,
    TaskReworkSentV1,
)
from shared.routing import Event
from shared.uow import UnitOfWork

log = logging.getLogger(__name__)

# Review states in which a new or withdrawn answer changes the outcome.
UNDECIDED = frozenset({"waiting", "review", "rework"})
TIMEOUT_REASON = "consensus_timeout"


@dataclass(frozen=True)
class JudgingPolicy:
    """A job's QC policy with the service's defaults filled in where the job set nothing."""

    consensus: ConsensusPolicy
    consensus_timeout_seconds: float
    forbidden_together: tuple[tuple[str, str], ...]


def effective_policy(job: QcJob | None, settings: QcSettings) -> JudgingPolicy:
    """The policy a job is judged by: its ``policy`` keys, else the settings' defaults."""
    stored: dict[str, Any] = dict(job.policy or {}) if job is not None else {}
    return JudgingPolicy(
        consensus=ConsensusPolicy(
            iou_threshold=float(stored.get("iou_threshold", settings.default_iou_threshold)),
            min_agreement=float(stored.get("min_agreement", settings.default_min_agreement)),
        ),
        consensus_timeout_seconds=float(
            stored.get("consensus_timeout_seconds", settings.default_consensus_timeout_seconds)
        ),
        forbidden_together=tuple(
            (str(a), str(b)) for a, b in stored.get("forbidden_together") or []
        ),
    )


# ----------------------------------------------------------------------------- handlers


async def judge_submitted(qc: Qc, events: Sequence[Event[AnnotationSubmittedV1]]) -> None:
    """Judge a run of submitted annotations in one unit of work, each once however often it
    is delivered (one transaction per run, not per answer: the commit, the inbox and the
    outbox rows are shared)."""
    async with qc.units.begin() as uow:
        claimed = await uow.claim_all([e.envelope for e in events])
        for event in events:
            if event.id in claimed:
                claimed.discard(event.id)  # the same event twice in one run is judged once
                await judge(uow, qc.settings, event.payload)


async def withdraw_answer(qc: Qc, event: Event[AnnotationWithdrawnV1]) -> None:
    """A withdrawn answer stops counting; an undecided asset is evaluated again without it.

    An accepted asset stays accepted: its labels were decided on what counted then.
    """
    withdrawn = event.payload
    async with qc.units.begin() as uow:
        if not await uow.claim(event.envelope):
            return
        annotation = await annotations_repo.withdraw(uow.session, withdrawn.annotation_id)
        if annotation is None or annotation.gold:
            return
        review = await reviews_repo.locked_review(
            uow.session, annotation.job_id, annotation.asset_id
        )
        job = await mirror_repo.job_by_id(uow.session, annotation.job_id)
        if review is None or job is None or review.state not in ("waiting", "review"):
            return
        await evaluate(uow, job, review, effective_policy(job, qc.settings))


async def set_aside_reworked(qc: Qc, event: Event[TaskReworkSentV1]) -> None:
    """A task went back to its vendor: its old answer stops counting, the new one will."""
    async with qc.units.begin() as uow:
        if await uow.claim(event.envelope):
            await annotations_repo.set_aside_task(uow.session, event.payload.task_id)


# ----------------------------------------------------------------------------- judging


async def judge(uow: UnitOfWork, settings: QcSettings, answer: AnnotationSubmittedV1) -> None:
    """Check and store one answer, score it if gold, else evaluate its asset."""
    session = uow.session
    job = await mirror_repo.job_by_id(session, answer.job_id)
    if job is None:
        # before any review lock, in the order remember_job takes them
        job = await mirror_repo.lock_job_arrival(session, answer.job_id)
    policy = effective_policy(job, settings)
    findings = check_annotation(answer.shapes, forbidden_together=policy.forbidden_together)
    score = await _gold_score(uow, answer, policy) if answer.gold else None
    stored = await annotations_repo.add_annotation(
        session,
        {
            "id": answer.annotation_id,
            "task_id": answer.task_id,
            "job_id": answer.job_id,
            "asset_id": answer.asset_id,
            "dataset_id": answer.dataset_id,
            "vendor_id": answer.vendor_id,
            "annotator_id": answer.annotator_id,
            "replica": answer.replica,
            "gold": answer.gold,
            "shapes": answer.shapes,
            "version": answer.version,
            "findings": [finding_record(f) for f in findings],
            "gold_score": gold_record(score) if score is not None else None,
            "lead_time_seconds": answer.lead_time_seconds,
            "received_at": answer.received_at,
        },
    )
    if not stored:
        return  # the same answer announced again under another event id
    live = await annotations_repo.settle_live(session, answer.annotation_id, answer.task_id)
    await _count_for_scorecard(uow, answer, score)
    if answer.gold:
        if score is not None:
            _emit_gold_scored(uow, answer, score)
        return
    review = await reviews_repo.open_review(
        session, answer.job_id, answer.asset_id, answer.dataset_id, answer.received_at
    )
    if not live or review.state not in UNDECIDED:
        return
    if job is None:
        # The job's announcement travels on another partition; it evaluates what waits.
        return
    if review.state == "rework":
        review.first_answer_at = answer.received_at  # the new round's first answer
    await evaluate(uow, job, review, policy)


async def evaluate(
    uow: UnitOfWork,
    job: QcJob,
    review: AssetReview,
    policy: JudgingPolicy,
    *,
    timed_out: bool = False,
) -> None:
    """Decide a locked, undecided review on the answers that count now: accept, hold for a
    person, or keep waiting for replicas.

    ``timed_out``: the job's consensus timeout passed, so consensus runs on what is in.
    """
    answers = await annotations_repo.live_answers(uow.session, job.id, review.asset_id)
    if not answers:
        _wait(review)
        review.first_answer_at = None  # the next answer starts the clock again
        return
    if job.overlap <= 1:
        answer = answers[-1]
        reasons = finding_reasons([answer])
        if reasons:
            _hold(review, reasons, answer.shapes)
        else:
            await decisions.accept(
                uow, review, job, answer.shapes, [answer.id], decided_by=ACTOR, automatic=True
            )
        return
    if len({a.replica for a in answers}) < job.overlap and not timed_out:
        _wait(review)
        return
    if len(answers) < 2:
        _hold(review, [TIMEOUT_REASON], answers[0].shapes)
        return
    by_annotator = annotators_of(answers)
    consensus = compute_consensus(
        {name: a.shapes for name, a in by_annotator.items()}, policy.consensus
    )
    review.agreement = consensus.agreement
    review.consensus = consensus_record(consensus, by_annotator, timed_out=timed_out)
    _emit_consensus(uow, review, consensus, by_annotator, timed_out=timed_out)
    if consensus.agreement is not None:
        compared = [(a.vendor_id, consensus.agreement) for a in by_annotator.values()]
        await scorecards.count_agreement(uow, job.id, datetime.now(UTC), compared)
    reasons = list(consensus.reasons) + finding_reasons(answers)
    if reasons:
        _hold(review, reasons + ([TIMEOUT_REASON] if timed_out else []), consensus.label_set)
    else:
        ids = [a.id for a in answers]
        await decisions.accept(
            uow, review, job, consensus.label_set, ids, decided_by=ACTOR, automatic=True
        )


async def evaluate_waiting(uow: UnitOfWork, settings: QcSettings, job: QcJob) -> None:
    """Evaluate a job's assets whose answers came before the job was announced."""
    policy = effective_policy(job, settings)
    for asset_id in await reviews_repo.waiting_assets(uow.session, job.id):
        review = await reviews_repo.locked_review(uow.session, job.id, asset_id)
        if review is not None and review.state == "waiting":
            await evaluate(uow, job, review, policy)


def annotators_of(answers: Sequence[JudgedAnnotation]) -> dict[str, JudgedAnnotation]:
    """Answers by annotator; two vendors' annotators may share an id, so a shared id is told
    apart by its replica (``worker-1#0``, ``worker-1#1``)."""
    names = rater_names([(a.annotator_id, a.replica) for a in answers])
    return dict(zip(names, answers, strict=True))


def _wait(review: AssetReview) -> None:
    review.state = "waiting"
    review.reasons = []
    review.updated_at = datetime.now(UTC)


def _hold(review: AssetReview, reasons: list[str], label_set: list[dict[str, Any]]) -> None:
    """Queue for a person; ``label_set`` is what accepting it as it stands would accept."""
    review.state = "review"
    review.reasons = reasons
    review.label_set = label_set
    review.updated_at = datetime.now(UTC)


async def _count_for_scorecard(
    uow: UnitOfWork, answer: AnnotationSubmittedV1, score: GoldScore | None
) -> None:
    """A task's first answer counts on its vendor's scorecard (a later version is an edit of
    the same work, and its lead time says nothing)."""
    if answer.version != 1:
        return
    vendor, job, at = answer.vendor_id, answer.job_id, answer.received_at
    await scorecards.count_submitted(uow, vendor, job, at, answer.lead_time_seconds)
    if score is not None:
        await scorecards.count_gold(uow, vendor, job, at, score)


async def _gold_score(
    uow: UnitOfWork, answer: AnnotationSubmittedV1, policy: JudgingPolicy
) -> GoldScore | None:
    task = await mirror_repo.task_by_id(uow.session, answer.task_id)
    if task is None or task.gold_shapes is None:
        log.warning("gold task %s: known answer not announced; answer not scored", answer.task_id)
        return None
    return score_against_gold(
        answer.shapes, task.gold_shapes, iou_threshold=policy.consensus.iou_threshold
    )


# ----------------------------------------------------------------------------- records


def finding_record(finding: Finding) -> dict[str, Any]:
    """A finding as stored with its annotation."""
    return {"code": finding.code, "message": finding.message, "shapes": list(finding.shapes)}


def finding_reasons(answers: Sequence[JudgedAnnotation]) -> list[str]:
    """One review reason per finding, naming the annotator."""
    return [
        f"{f['code']}: {f['message']} (annotator {a.annotator_id})"
        for a in answers
        for f in a.findings
    ]


def gold_record(score: GoldScore) -> dict[str, Any]:
    """A gold score as stored with its annotation: the figures and the counts behind them."""
    return {
        "precision": score.precision.value,
        "recall": score.recall.value,
        "f1": score.f1.value,
        "mean_iou": score.iou.value,
        "class_accuracy": score.class_accuracy.value,
        "true_positives": score.true_positives,
        "false_positives": score.false_positives,
        "false_negatives": score.false_negatives,
        "iou_total": score.iou.total,
        "iou_count": score.iou.count,
        "class_correct": score.class_accuracy.numerator,
        "class_total": score.class_accuracy.denominator,
        "unscored_shapes": score.unscored_shapes,
    }


def consensus_record(
    consensus: AssetConsensus, by_annotator: dict[str, JudgedAnnotation], *, timed_out: bool
) -> dict[str, Any]:
    """What a reviewer needs of a consensus: figures, every pair's matching, the label set
    with who backs each shape. JSON-ready."""
    return {
        "annotators": list(consensus.annotators),
        "annotation_ids": {name: str(a.id) for name, a in by_annotator.items()},
        "agreement": consensus.agreement,
        "mean_iou": consensus.iou.value,
        "f1": consensus.f1.value,
        "unmatched_shapes": consensus.unmatched_shapes,
        "class_disagreements": consensus.class_disagreements,
        "class_votes": consensus.class_votes,
        "left_out_shapes": consensus.left_out_shapes,
        "uncompared_shapes": consensus.uncompared_shapes,
        "passed": consensus.passed,
        "reasons": list(consensus.reasons),
        "timed_out": timed_out,
        "pairs": [
            {
                "a": p.a,
                "b": p.b,
                "f1": p.matching.f1.value,
                "mean_iou": p.matching.iou.value,
                "matches": [[m.a, m.b, m.iou] for m in p.matching.matches],
                "class_disagreements": [[m.a, m.b, m.iou] for m in p.matching.class_disagreements],
                "unmatched_a": list(p.matching.unmatched_a),
                "unmatched_b": list(p.matching.unmatched_b),
            }
            for p in consensus.pairs
        ],
        "shapes": [{"shape": s.shape, "support": list(s.support)} for s in consensus.shapes],
    }


def _emit_consensus(
    uow: UnitOfWork,
    review: AssetReview,
    consensus: AssetConsensus,
    by_annotator: dict[str, JudgedAnnotation],
    *,
    timed_out: bool,
) -> None:
    uow.emit(
        ConsensusComputedV1(
            job_id=review.job_id,
            asset_id=review.asset_id,
            dataset_id=review.dataset_id,
            annotation_ids=[a.id for a in by_annotator.values()],
            annotators=list(consensus.annotators),
            agreement=consensus.agreement or 0.0,
            mean_iou=consensus.iou.value,
            f1=consensus.f1.value,
            unmatched_shapes=consensus.unmatched_shapes,
            class_disagreements=consensus.class_disagreements,
            passed=consensus.passed,
            reasons=list(consensus.reasons),
            timed_out=timed_out,
        ),
        subject=str(review.asset_id),
        actor=ACTOR,
        key=str(review.asset_id),
    )


def _emit_gold_scored(uow: UnitOfWork, answer: AnnotationSubmittedV1, score: GoldScore) -> None:
    uow.emit(
        GoldScoredV1(
            job_id=answer.job_id,
            asset_id=answer.asset_id,
            task_id=answer.task_id,
            annotation_id=answer.annotation_id,
            vendor_id=answer.vendor_id,
            annotator_id=answer.annotator_id,
            precision=score.precision.value,
            recall=score.recall.value,
            f1=score.f1.value,
            mean_iou=score.iou.value,
            class_accuracy=score.class_accuracy.value,
            true_positives=score.true_positives,
            false_positives=score.false_positives,
            false_negatives=score.false_negatives,
        ),
        subject=str(answer.asset_id),
        actor=ACTOR,
        key=str(answer.asset_id),
    )
