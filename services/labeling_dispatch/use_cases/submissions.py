"""Annotations coming back: the signed vendor webhook, and what people can read of it.

The checks run in a fixed order (docs/labeling.md): body size, vendor, signature, delivery id,
replay, payload, task ownership, assignment state, shapes. The work is split in two so that no
database connection is held while the ontology spec is fetched: the tasks are read and judged
first (no lock: the closing UPDATE only closes assignments still open, so a race is caught
there), then one unit of work claims the delivery id (the replay check, decided by the
receipt's primary key), applies the verdict and emits the events. Accepted answers are
committed together: an :class:`AnswerBatcher` takes every verdict waiting and writes them in one
unit of work of a few statements; anything unusual in it (a replay, a race lost) falls back to
the request's own unit of work, which answers exactly as it would alone. A refusal changes nothing
but its own record: a ``refused_requests`` row and an ANNOTATION_REFUSED event, written in a
unit of work of its own.

Refusals before the vendor is authenticated (413, 401) are written at most
:data:`UNAUTHENTICATED_RATE` per second per (named vendor, client address) with a burst of
:data:`UNAUTHENTICATED_BURST`, and at most :data:`UNAUTHENTICATED_TOTAL_RATE` per second
overall; the rest are counted and the count rides on the next one written, so a flood of
forged requests cannot turn into a flood of database writes and audit records.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.labeling_dispatch.context import Labeling
from services.labeling_dispatch.domain.ontology import validate_shapes
from services.labeling_dispatch.domain.signatures import SignatureCheck, verify
from services.labeling_dispatch.repository import annotations as repo
from services.labeling_dispatch.repository.annotations import TaskToAnswer, VendorCredentials
from services.labeling_dispatch.use_cases.ontologies import pinned_spec
from services.labeling_dispatch.use_cases.vendor_access import vendor_by_id
from shared.auth import Principal
from shared.errors import ApiError
from shared.events import AnnotationRefusedV1, AnnotationSubmittedV1
from shared.outbox import current_traceparent
from shared.paging import Cursor
from shared.uow import UnitOfWork

log = logging.getLogger(__name__)

MAX_ANNOTATIONS = 1000
MAX_DELIVERY_ID = 128
# One refusal naming many tasks is recorded per task, up to this many.
MAX_REFUSAL_ROWS = 100
UNAUTHENTICATED_RATE = 1.0
UNAUTHENTICATED_BURST = 10.0
UNAUTHENTICATED_TOTAL_RATE = 50.0
# Accepted requests committed in one unit of work, at most.
MAX_BATCH = 200
_SIGNATURE_REFUSALS = {
    SignatureCheck.missing: ("missing_signature", "the request is not signed"),
    SignatureCheck.malformed: ("invalid_signature", "the signature is not valid"),
    SignatureCheck.mismatch: ("invalid_signature", "the signature is not valid"),
    SignatureCheck.expired: ("signature_expired", "the signature's timestamp is out of range"),
}


class SubmittedAnnotation(BaseModel):
    """One vendor answer: which task, who drew it, when, and the shapes (canonical form)."""

    model_config = ConfigDict(extra="forbid")

    task_id: uuid.UUID
    annotator_id: str = Field(min_length=1, max_length=256)
    submitted_at: AwareDatetime | None = None
    shapes: list[Any] = Field(max_length=10_000)


class WebhookBody(BaseModel):
    """What a vendor posts to its webhook: answers to one or more of its tasks."""

    model_config = ConfigDict(extra="forbid")

    annotations: list[SubmittedAnnotation] = Field(min_length=1, max_length=MAX_ANNOTATIONS)


class SubmissionAnswer(BaseModel):
    """The webhook's answer; a replay gets the first answer again with ``duplicate`` true."""

    accepted: int
    annotation_ids: list[uuid.UUID]
    duplicate: bool


@dataclass
class Refusal(Exception):
    """A request refused; recorded, then answered with ``status`` and the common error body."""

    status: int
    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    # (task id, subject of its event) for each task the refusal is about
    tasks: list[tuple[uuid.UUID, str | None, str | None]] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)

    def as_error(self) -> ApiError:
        return ApiError(self.status, self.code, self.message, self.details)


@dataclass
class _Bucket:
    tokens: float
    stamp: float
    suppressed: int = 0


class RefusalSampler:
    """Token buckets deciding which unauthenticated refusals are written down."""

    def __init__(self, rate: float, burst: float, total_rate: float) -> None:
        self.rate, self.burst, self.total_rate = rate, burst, total_rate
        self.buckets: dict[tuple[str, str], _Bucket] = {}
        self.total = _Bucket(total_rate, 0.0)

    def _take(self, bucket: _Bucket, rate: float, burst: float, now: float) -> bool:
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    def admit(self, key: tuple[str, str], now: float) -> int | None:
        """None: do not write this one; else how many were suppressed before it (for this key)."""
        if len(self.buckets) > 10_000:
            self.buckets.clear()
        bucket = self.buckets.setdefault(key, _Bucket(self.burst, now))
        if not self._take(bucket, self.rate, self.burst, now) or not self._take(
            self.total, self.total_rate, self.total_rate, now
        ):
            bucket.suppressed += 1
            return None
        suppressed, bucket.suppressed = bucket.suppressed, 0
        return suppressed


unauthenticated_refusals = RefusalSampler(
    UNAUTHENTICATED_RATE, UNAUTHENTICATED_BURST, UNAUTHENTICATED_TOTAL_RATE
)


@dataclass(frozen=True)
class Webhook:
    """An inbound webhook request as the route hands it over."""

    vendor_id: uuid.UUID
    chunks: AsyncIterator[bytes]
    content_length: str | None
    signature: str | None
    delivery_id: str | None
    client: str


async def receive(labeling: Labeling, request: Webhook) -> SubmissionAnswer:
    """Check, then accept (all or nothing) or refuse (recorded) one webhook request."""
    vendor: VendorCredentials | None = None
    delivery_id = request.delivery_id[:MAX_DELIVERY_ID] if request.delivery_id else None
    try:
        body = await read_body(request, labeling.settings.webhook_max_body_bytes)
        vendor = await vendor_by_id(labeling, request.vendor_id)
        if vendor is None or not vendor.enabled:
            # the same answer as a bad signature, so vendor ids cannot be probed
            raise Refusal(401, "invalid_signature", "the signature is not valid")
        check = verify(
            vendor.secret,
            request.signature,
            body,
            now=time.time(),
            tolerance=labeling.settings.webhook_tolerance_seconds,
        )
        if check is not SignatureCheck.ok:
            raise Refusal(401, *_SIGNATURE_REFUSALS[check])
        if not request.delivery_id or len(request.delivery_id) > MAX_DELIVERY_ID:
            raise Refusal(
                422,
                "missing_delivery_id",
                f"a Conveyor-Delivery header of 1 to {MAX_DELIVERY_ID} characters is required",
            )
        assert delivery_id is not None
        return await _accept(labeling, vendor, delivery_id, body)
    except Refusal as refusal:
        authenticated = vendor is not None and refusal.status != 401
        await record_refusal(
            labeling,
            refusal,
            vendor_id=vendor.id if vendor is not None else None,
            delivery_id=delivery_id,
            sample_key=None if authenticated else (str(request.vendor_id), request.client),
        )
        raise refusal.as_error() from None


async def read_body(request: BodyStream, limit: int) -> bytes:
    """The body, read no further than ``limit`` bytes (413 past it)."""
    too_big = Refusal(413, "payload_too_large", f"the body is larger than {limit} bytes")
    declared = request.content_length
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_big
    body = bytearray()
    async for chunk in request.chunks:
        body += chunk
        if len(body) > limit:
            raise too_big
    return bytes(body)


class BodyStream(Protocol):
    """A request body arriving in chunks, with its declared length."""

    @property
    def chunks(self) -> AsyncIterator[bytes]: ...

    @property
    def content_length(self) -> str | None: ...


@dataclass(frozen=True)
class _Verdict:
    """What the payload and the task rows say, before the delivery id is claimed."""

    refusal: Refusal | None = None
    annotations: list[dict[str, Any]] = field(default_factory=list)
    submitted: list[tuple[TaskToAnswer, SubmittedAnnotation, list[dict[str, Any]]]] = field(
        default_factory=list
    )


def _answer_of(verdict: _Verdict) -> SubmissionAnswer:
    ids = [row["id"] for row in verdict.annotations]
    return SubmissionAnswer(accepted=len(ids), annotation_ids=ids, duplicate=False)


async def _accept(
    labeling: Labeling, vendor: VendorCredentials, delivery_id: str, body: bytes
) -> SubmissionAnswer:
    verdict = await _judge(labeling, vendor, body, delivery_id)
    if verdict.refusal is None and labeling.answers is not None:
        answer = await labeling.answers.commit(vendor, delivery_id, verdict)
        if answer is not None:
            return answer
    return await _settle(labeling, vendor, delivery_id, verdict)


async def _settle(
    labeling: Labeling, vendor: VendorCredentials, delivery_id: str, verdict: _Verdict
) -> SubmissionAnswer:
    """One request's own unit of work: claim the delivery id, apply the verdict or refuse."""
    answer = _answer_of(verdict)
    task_ids = [t for t, _, _ in verdict.refusal.tasks] if verdict.refusal else []
    async with labeling.units.begin() as uow:
        response = answer.model_dump(mode="json")
        if not await repo.claim_receipt(uow.session, vendor.id, delivery_id, response):
            first = await repo.receipt_response(uow.session, vendor.id, delivery_id) or response
        else:
            first = None
            if verdict.refusal is not None:
                raise verdict.refusal
            lost = await _apply(uow, vendor, verdict)
            if lost is not None:
                raise lost
    if first is not None:
        refusal = Refusal(200, "replayed", "this delivery id was accepted before")
        refusal.tasks = [(t, None, None) for t in task_ids] or [
            (a.task_id, str(t.asset_id), t.traceparent) for t, a, _ in verdict.submitted
        ]
        await record_refusal(labeling, refusal, vendor_id=vendor.id, delivery_id=delivery_id)
        return SubmissionAnswer.model_validate({**first, "duplicate": True})
    # The capacity this frees is refilled by the dispatcher's next periodic round: waking it
    # for every answer costs a round (three transactions) per webhook under load.
    return answer


async def _judge(
    labeling: Labeling, vendor: VendorCredentials, body: bytes, delivery_id: str
) -> _Verdict:
    """Parse the payload and check each task and its shapes; reads, never writes."""
    try:
        payload = WebhookBody.model_validate_json(body)
    except ValidationError as exc:
        errors = [
            {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        return _Verdict(
            Refusal(
                422,
                "invalid_payload",
                "the body is not a valid webhook payload",
                {"errors": errors},
                problems=errors,
            )
        )
    wanted = [a.task_id for a in payload.annotations]
    repeated = (
        sorted({str(t) for t in wanted if wanted.count(t) > 1})
        if len(set(wanted)) < len(wanted)
        else []
    )
    if repeated:
        return _Verdict(
            Refusal(
                422,
                "duplicate_task",
                "a request may answer each task once",
                {"task_ids": repeated},
                tasks=[(uuid.UUID(t), None, None) for t in repeated],
            )
        )
    async with labeling.units.read() as session:
        rows = await repo.tasks_to_answer(session, vendor.id, wanted)
    missing = [t for t in wanted if t not in rows]
    if missing:
        return _Verdict(
            Refusal(
                404,
                "task_not_found",
                f"no task {missing[0]}" if len(missing) == 1 else f"{len(missing)} tasks not found",
                {"task_ids": [str(t) for t in missing]},
                tasks=[(t, None, None) for t in missing],
            )
        )
    now = datetime.now(UTC)
    closed = [_closed(rows[t], now) for t in wanted]
    if any(closed):
        first = next(c for c in closed if c)
        late = [(t, c) for t, c in zip(wanted, closed, strict=True) if c]
        return _Verdict(
            Refusal(
                409,
                first[0],
                first[1],
                {"tasks": [{"task_id": str(t), "code": c[0]} for t, c in late]},
                tasks=[(t, str(rows[t].asset_id), rows[t].traceparent) for t, _ in late],
            )
        )
    submitted = []
    problems: list[dict[str, Any]] = []
    for index, annotation in enumerate(payload.annotations):
        task = rows[annotation.task_id]
        spec = await pinned_spec(labeling, task.ontology_id, task.ontology_version)
        shapes, found = validate_shapes(
            spec, annotation.shapes, width=task.width, height=task.height
        )
        problems.extend(
            {"annotation": index, "task_id": str(task.task_id), **p.model_dump()} for p in found
        )
        submitted.append((task, annotation, shapes))
    if problems:
        bad = {p["task_id"] for p in problems}
        return _Verdict(
            Refusal(
                422,
                "invalid_annotation",
                f"{len(problems)} problem(s) in the annotations; nothing was stored",
                {"problems": problems},
                tasks=[
                    (t.task_id, str(t.asset_id), t.traceparent)
                    for t, _, _ in submitted
                    if str(t.task_id) in bad
                ],
                problems=problems,
            )
        )
    rows_out = [
        {
            "id": uuid.uuid4(),
            "task_id": task.task_id,
            "attempt": task.attempt,
            "vendor_id": vendor.id,
            "annotator_id": annotation.annotator_id,
            "shapes": shapes,
            "delivery_id": delivery_id,
            "vendor_submitted_at": annotation.submitted_at,
            "received_at": now,
            "lead_time_seconds": (now - (task.dispatched_at or task.assigned_at)).total_seconds(),
        }
        for task, annotation, shapes in submitted
    ]
    return _Verdict(annotations=rows_out, submitted=submitted)


def _closed(task: TaskToAnswer, now: datetime) -> tuple[str, str] | None:
    """Why this vendor may no longer answer the task (code, message), or None."""
    if task.outcome == "answered":
        return "task_already_answered", f"task {task.task_id} was answered already"
    if task.outcome == "cancelled" or task.task_state == "cancelled":
        return "task_cancelled", f"task {task.task_id} was cancelled"
    if task.outcome != "open" or (
        task.lease_expires_at is not None and task.lease_expires_at <= now
    ):
        return "task_expired", f"the lease of task {task.task_id} has ended"
    return None


async def _apply(uow: UnitOfWork, vendor: VendorCredentials, verdict: _Verdict) -> Refusal | None:
    """Store the annotations, submit the tasks, emit the events; a Refusal if a race was lost."""
    now = verdict.annotations[0]["received_at"]
    held = [(t.task_id, t.attempt) for t, _, _ in verdict.submitted]
    done = await repo.submit_tasks(uow.session, vendor.id, held, now)
    if len(done) != len(held):
        lost = [t for t, _, _ in verdict.submitted if t.task_id not in done]
        return Refusal(
            409,
            "task_already_answered",
            f"task {lost[0].task_id} was answered or expired meanwhile",
            {"task_ids": [str(t.task_id) for t in lost]},
            tasks=[(t.task_id, str(t.asset_id), t.traceparent) for t in lost],
        )
    await repo.insert_annotations(uow.session, verdict.annotations)
    _emit_submitted(uow, vendor, verdict)
    return None


def _emit_submitted(
    uow: UnitOfWork, vendor: VendorCredentials, verdict: _Verdict, traceparent: str | None = None
) -> None:
    """Stage an ANNOTATION_SUBMITTED per answer, in its asset's trace (else ``traceparent``,
    else the current span's)."""
    for row, (task, _, _) in zip(verdict.annotations, verdict.submitted, strict=True):
        emit_submitted(uow, vendor.name, task, row, traceparent)


def emit_submitted(
    uow: UnitOfWork,
    vendor_name: str,
    task: TaskToAnswer,
    row: dict[str, Any],
    traceparent: str | None = None,
) -> None:
    """Stage the ANNOTATION_SUBMITTED of one stored annotation ``row`` of ``task``."""
    uow.emit(
        AnnotationSubmittedV1(
            annotation_id=row["id"],
            task_id=task.task_id,
            job_id=task.job_id,
            asset_id=task.asset_id,
            dataset_id=task.dataset_id,
            vendor_id=row["vendor_id"],
            annotator_id=row["annotator_id"],
            replica=task.replica,
            gold=task.gold,
            ontology_id=task.ontology_id,
            ontology_version=task.ontology_version,
            shapes=row["shapes"],
            vendor_submitted_at=row["vendor_submitted_at"],
            received_at=row["received_at"],
            lead_time_seconds=row["lead_time_seconds"],
            version=row.get("version", 1),
            supersedes=row.get("supersedes"),
            vendor_ref=row.get("vendor_ref"),
        ),
        subject=str(task.asset_id),
        actor=f"vendor:{vendor_name}",
        key=str(task.task_id),
        traceparent=task.traceparent or traceparent,
    )


@dataclass
class _Waiting:
    """An accepted verdict waiting for its batch; ``answer`` resolves to None when the request
    must take its own unit of work (:func:`_settle`)."""

    vendor: VendorCredentials
    delivery_id: str
    verdict: _Verdict
    traceparent: str | None
    answer: asyncio.Future[SubmissionAnswer | None]


class _LostRace(Exception):
    """A task of the batch was answered or expired meanwhile: roll the whole batch back."""


class AnswerBatcher:
    """Commits accepted answers together: one worker takes everything queued (up to
    :data:`MAX_BATCH`) and writes it in one unit of work.

    Nothing waits on purpose: while a batch commits the next one queues up, so under load a
    transaction (and an outbox relay cycle) serves many webhooks, and alone a request is a batch
    of one. The per-statement and per-transaction costs were most of a webhook's CPU.
    """

    def __init__(self, labeling: Labeling) -> None:
        self.labeling = labeling
        self._queue: asyncio.Queue[_Waiting | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the worker (in the lifespan)."""
        self._worker = asyncio.create_task(self._run(), name="answer-batcher")

    async def stop(self) -> None:
        """Commit what is queued, then end the worker; later requests commit on their own."""
        worker, self._worker = self._worker, None
        if worker is not None:
            self._queue.put_nowait(None)
            await worker

    async def commit(
        self, vendor: VendorCredentials, delivery_id: str, verdict: _Verdict
    ) -> SubmissionAnswer | None:
        """The answer once committed with a batch; None: settle this request on its own."""
        if self._worker is None or self._worker.done():
            return None
        waiting = _Waiting(
            vendor,
            delivery_id,
            verdict,
            current_traceparent(),
            asyncio.get_running_loop().create_future(),
        )
        self._queue.put_nowait(waiting)
        return await waiting.answer

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            stopping = False
            while len(batch) < MAX_BATCH and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            answers: dict[int, SubmissionAnswer] = {}
            try:
                answers = await self._write(batch)
            except _LostRace:
                pass
            except Exception:
                log.exception("a batch of %d answers failed; each is retried alone", len(batch))
            finally:
                for index, waiting in enumerate(batch):
                    if not waiting.answer.done():
                        waiting.answer.set_result(answers.get(index))
            if stopping:
                return

    async def _write(self, batch: list[_Waiting]) -> dict[int, SubmissionAnswer]:
        """One unit of work for the batch: the answers of the items it committed, by index.

        An item left out (a replay, or a second item with the same delivery id) settles alone
        afterwards and finds the receipt, exactly as a replay does.
        """
        answers = {index: _answer_of(w.verdict) for index, w in enumerate(batch)}
        first: dict[tuple[uuid.UUID, str], int] = {}
        for index, waiting in enumerate(batch):
            first.setdefault((waiting.vendor.id, waiting.delivery_id), index)
        claims = [
            (
                batch[index].vendor.id,
                batch[index].delivery_id,
                json.dumps(answers[index].model_dump(mode="json")),
            )
            for index in first.values()
        ]
        async with self.labeling.units.begin() as uow:
            claimed = await repo.claim_receipts(uow.session, claims)
            taken = [index for key, index in first.items() if key in claimed]
            held = [
                (task.task_id, task.attempt, batch[index].vendor.id, row["received_at"])
                for index in taken
                for (task, _, _), row in zip(
                    batch[index].verdict.submitted, batch[index].verdict.annotations, strict=True
                )
            ]
            if held:
                done = await repo.submit_held_tasks(uow.session, held)
                if len(done) != len(held):
                    raise _LostRace
                rows = [row for index in taken for row in batch[index].verdict.annotations]
                await repo.insert_annotations(uow.session, rows)
            for index in taken:
                waiting = batch[index]
                _emit_submitted(uow, waiting.vendor, waiting.verdict, waiting.traceparent)
        return {index: answers[index] for index in taken}


async def record_refusal(
    labeling: Labeling,
    refusal: Refusal,
    *,
    vendor_id: uuid.UUID | None,
    delivery_id: str | None,
    sample_key: tuple[str, str] | None = None,
) -> None:
    """Write a refusal down (a row and an event per task it names) in its own unit of work.

    ``sample_key`` set: the request was not authenticated, so it is written only when the
    sampler admits it.
    """
    problems = refusal.problems
    if sample_key is not None:
        suppressed = unauthenticated_refusals.admit(sample_key, time.monotonic())
        if suppressed is None:
            return
        if suppressed:
            problems = [*problems, {"code": "suppressed", "count": suppressed}]
    about: Sequence[tuple[uuid.UUID | None, str | None, str | None]] = refusal.tasks[
        :MAX_REFUSAL_ROWS
    ] or [(None, None, None)]
    fallback_subject = str(vendor_id) if vendor_id else "vendor-webhook"
    actor = f"vendor:{vendor_id}" if vendor_id else "unauthenticated"
    async with labeling.units.begin() as uow:
        for task_id, subject, traceparent in about:
            await repo.insert_refusal(
                uow.session,
                {
                    "vendor_id": vendor_id,
                    "task_id": task_id,
                    "delivery_id": delivery_id,
                    "reason": refusal.code,
                    "status_code": refusal.status,
                    "problems": problems,
                },
            )
            uow.emit(
                AnnotationRefusedV1(
                    vendor_id=vendor_id,
                    task_id=task_id,
                    delivery_id=delivery_id,
                    reason=refusal.code,
                    status_code=refusal.status,
                    problems=problems,
                ),
                subject=subject or fallback_subject,
                actor=actor,
                key=str(task_id) if task_id else fallback_subject,
                traceparent=traceparent,
            )


class AnnotationOut(BaseModel):
    """A stored annotation, as people read it."""

    id: uuid.UUID
    task_id: uuid.UUID
    attempt: int
    vendor_id: uuid.UUID
    annotator_id: str
    shapes: list[dict[str, Any]]
    delivery_id: str | None
    vendor_submitted_at: datetime | None
    received_at: datetime
    lead_time_seconds: float | None
    version: int = Field(
        default=1, description="1, or higher for a change made at the vendor after submitting"
    )
    vendor_ref: str | None = Field(default=None, description="the vendor's id of the annotation")
    supersedes: uuid.UUID | None = None
    withdrawn_at: datetime | None = Field(
        default=None, description="set when the vendor deleted it: it no longer counts"
    )


class AnnotationPage(BaseModel):
    """One page of a task's annotations; pass ``next_cursor`` back as ``cursor``."""

    items: list[AnnotationOut]
    next_cursor: str | None


class RefusalOut(BaseModel):
    """A refused request about a task: why, with which status, and its problems."""

    id: int
    vendor_id: uuid.UUID | None
    task_id: uuid.UUID | None
    delivery_id: str | None
    reason: str
    status_code: int
    problems: list[dict[str, Any]]
    received_at: datetime


class RefusalPage(BaseModel):
    """One page of a task's refused requests; pass ``next_cursor`` back as ``cursor``."""

    items: list[RefusalOut]
    next_cursor: str | None


async def _visible_task(session: AsyncSession, principal: Principal, task_id: uuid.UUID) -> None:
    dataset = await repo.task_dataset(session, task_id)
    if dataset is None or not principal.sees(dataset):
        raise ApiError(404, "task_not_found", f"no task {task_id}")


async def annotations_of_task(
    labeling: Labeling, principal: Principal, task_id: uuid.UUID, limit: int, cursor: str | None
) -> AnnotationPage:
    """A task's stored annotations, oldest first."""
    after = Cursor.decode(cursor) if cursor else None
    async with labeling.units.read() as session:
        await _visible_task(session, principal, task_id)
        rows = await repo.annotations_of_task(session, task_id, limit + 1, after)
    items = [AnnotationOut.model_validate(row, from_attributes=True) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = Cursor(items[-1].received_at, items[-1].id).encode()
    return AnnotationPage(items=items, next_cursor=next_cursor)


async def refusals_of_task(
    labeling: Labeling, principal: Principal, task_id: uuid.UUID, limit: int, cursor: str | None
) -> RefusalPage:
    """The requests refused about a task, oldest first."""
    after: int | None = None
    if cursor:
        if not cursor.isdigit():
            raise ApiError(400, "invalid_cursor", "cursor is not one this API returned")
        after = int(cursor)
    async with labeling.units.read() as session:
        await _visible_task(session, principal, task_id)
        rows = await repo.refusals_of_task(session, task_id, limit + 1, after)
    items = [RefusalOut.model_validate(row, from_attributes=True) for row in rows[:limit]]
    next_cursor = str(items[-1].id) if len(rows) > limit else None
    return RefusalPage(items=items, next_cursor=next_cursor)
