"""Label Studio vendors: their projects, and annotations coming back (webhook and reconcile).

A ``label_studio`` vendor is a Label Studio server Conveyor drives with an admin token. Each
pass (replica) of a job gets a project whose labeling config comes from the job's ontology
version, with a webhook back to this service. Label Studio does not sign its webhooks: the
webhook carries the vendor's secret in the :data:`TOKEN_HEADER` header, so anyone who can read
Label Studio's settings (its admins) could post as it — weaker than a signed vendor webhook,
and documented as such. Label Studio does not retry a webhook either (and gives up after about
a second), so every project is also reconciled: on start and every
``label_studio_sync_interval_seconds`` the tasks updated since the project's cursor are read
back and whatever Conveyor has not stored is taken.

One path stores what either route brings (:func:`take_annotations`): an annotation version is
identified by Label Studio's annotation id and its ``updated_at``, claimed as a receipt, so the
same version seen by the webhook and by reconcile is stored once. Results are converted from
percentages to canonical pixels and validated against the job's ontology version; a bad one is
refused and recorded per task like any vendor answer. A change made in Label Studio after
submission is stored as a new version superseding the last; a deletion marks the stored
version withdrawn. Neither overwrites anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from services.labeling_dispatch.context import Labeling
from services.labeling_dispatch.domain.label_studio import labeling_config, shapes_from_results
from services.labeling_dispatch.domain.ontology import OntologySpec, validate_shapes
from services.labeling_dispatch.models import Vendor
from services.labeling_dispatch.repository import annotations as answers_repo
from services.labeling_dispatch.repository import dispatch as dispatch_repo
from services.labeling_dispatch.repository import label_studio as repo
from services.labeling_dispatch.repository import vendors as vendors_repo
from services.labeling_dispatch.repository.annotations import TaskToAnswer
from services.labeling_dispatch.repository.label_studio import ProjectRow, StoredVersion
from services.labeling_dispatch.use_cases.jobs import job_not_found
from services.labeling_dispatch.use_cases.ontologies import pinned_spec
from services.labeling_dispatch.use_cases.submissions import (
    Refusal,
    emit_submitted,
    read_body,
    record_refusal,
)
from services.labeling_dispatch.vendor_edges.base import VendorTarget
from services.labeling_dispatch.vendor_edges.label_studio import TASK_KEY
from services.labeling_dispatch.vendor_edges.label_studio_api import (
    Annotation as LsAnnotation,
)
from services.labeling_dispatch.vendor_edges.label_studio_api import (
    LabelStudioApi,
    LabelStudioError,
)
from services.labeling_dispatch.vendor_edges.label_studio_api import Task as LsTask
from shared.auth import Principal
from shared.events import AnnotationWithdrawnV1
from shared.uow import UnitOfWork

log = logging.getLogger(__name__)

KIND = "label_studio"
TOKEN_HEADER = "X-Conveyor-Token"  # noqa: S105 - a header name, not a secret
WEBHOOK_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED")
# Reconcile re-reads this much before its cursor: tasks updated in the same instant as the
# cursor's would otherwise be missed (what is stored already is recognised and skipped).
CURSOR_OVERLAP = timedelta(seconds=2)
RECONCILE_PAGE = 100  # Label Studio tasks judged together
WITHDRAWN_REASON = "deleted in Label Studio"


def label_studio_api(labeling: Labeling, vendor: VendorTarget | Vendor) -> LabelStudioApi:
    """A client of the vendor's server with the vendor's token (or the configured one)."""
    url = vendor.url or labeling.settings.label_studio_url
    token = str((vendor.config or {}).get("token") or labeling.settings.label_studio_token)
    return LabelStudioApi(labeling.http, url, token)


def webhook_url(labeling: Labeling, vendor_id: uuid.UUID) -> str:
    return f"{labeling.settings.public_url.rstrip('/')}/v1/vendors/{vendor_id}/label-studio/events"


# --------------------------------------------------------------------------- projects


class LabelStudioProjects:
    """Finds or makes the Label Studio project of a pass of a job (the edge's directory)."""

    def __init__(self, labeling: Labeling) -> None:
        self.labeling = labeling

    async def project_for(self, vendor: VendorTarget, job: dict[str, Any], pass_no: int) -> int:
        job_id = uuid.UUID(str(job["id"]))
        async with self.labeling.units.read() as session:
            found = await repo.project(session, vendor.id, job_id, pass_no)
        if found is not None:
            return found.project_id
        # The one place this service calls out while a transaction is open: the slot's lock
        # must cover the creation in Label Studio, or two copies of the service would each make
        # a project. It happens once per job and pass.
        async with self.labeling.units.begin() as uow:
            await repo.lock_project_slot(uow.session, vendor.id, job_id, pass_no)
            found = await repo.project(uow.session, vendor.id, job_id, pass_no)
            if found is not None:
                return found.project_id
            row = await self._make(uow, vendor, job, job_id, pass_no)
            await repo.insert_project(uow.session, row)
        return row.project_id

    async def _make(
        self,
        uow: UnitOfWork,
        vendor: VendorTarget,
        job: dict[str, Any],
        job_id: uuid.UUID,
        pass_no: int,
    ) -> ProjectRow:
        """Create the project and its webhook in Label Studio (the caller stores the row)."""
        stored_job = await dispatch_repo.job_by_id(uow.session, job_id)
        overlap = stored_job.overlap if stored_job is not None else 1
        spec = OntologySpec.model_validate({"classes": job["ontology"]["classes"]})
        title = str(job["name"]) if overlap <= 1 else f"{job['name']} - pass {pass_no + 1}"
        api = label_studio_api(self.labeling, vendor)
        started = datetime.now(UTC)
        made = await api.create_project(
            title.ljust(3, "."),
            labeling_config(spec),
            description=(
                f"Conveyor job {job_id}, ontology {job['ontology']['id']} "
                f"version {job['ontology']['version']}, pass {pass_no + 1} of {overlap}. "
                "Submitted annotations go back to Conveyor."
            ),
        )
        hook = await api.create_webhook(
            made.id,
            webhook_url(self.labeling, vendor.id),
            actions=WEBHOOK_ACTIONS,
            headers={TOKEN_HEADER: vendor.secret},
        )
        return ProjectRow(vendor.id, job_id, pass_no, made.id, hook.id, started)


async def refresh_webhook_secret(labeling: Labeling, vendor: Vendor) -> None:
    """After the vendor's secret is rotated: the webhooks of its projects send the new one.

    Best effort: a webhook left with the old secret is refused, and reconcile still brings
    its annotations in.
    """
    async with labeling.units.read() as session:
        rows = await repo.projects_of_vendor(session, vendor.id)
    api = label_studio_api(labeling, vendor)
    for row in rows:
        if row.webhook_id is None:
            continue
        try:
            await api.update_webhook_headers(
                row.webhook_id, {TOKEN_HEADER: vendor.secret}, actions=WEBHOOK_ACTIONS
            )
        except LabelStudioError:
            log.warning("project %s: webhook secret not updated", row.project_id, exc_info=True)


class ProjectOut(BaseModel):
    """Where a pass of a job is labeled in Label Studio."""

    vendor_id: uuid.UUID
    pass_no: int = Field(description="1-based: replicas of one asset are in different passes")
    project_id: int
    project_url: str = Field(description="the project's page in Label Studio")
    synced_until: datetime = Field(description="annotations changed up to here are reconciled")


async def projects_of_job(
    labeling: Labeling, principal: Principal, job_id: uuid.UUID
) -> list[ProjectOut]:
    """The Label Studio projects of a job the caller may see (404 otherwise)."""
    async with labeling.units.read() as session:
        job = await dispatch_repo.job_by_id(session, job_id)
        if job is None or not principal.sees(job.dataset_id):
            raise job_not_found(job_id)
        rows = await repo.projects_of_job(session, job_id)
        servers = {r.vendor_id: await vendors_repo.vendor_by_id(session, r.vendor_id) for r in rows}
    found = []
    for row in rows:
        vendor = servers[row.vendor_id]
        base = (vendor.url if vendor else None) or labeling.settings.label_studio_url
        found.append(
            ProjectOut(
                vendor_id=row.vendor_id,
                pass_no=row.pass_no + 1,
                project_id=row.project_id,
                project_url=f"{base.rstrip('/')}/projects/{row.project_id}/data",
                synced_until=row.synced_until,
            )
        )
    return found


# --------------------------------------------------------------------------- annotations in


@dataclass(frozen=True)
class Seen:
    """One Label Studio annotation version, as the webhook or reconcile found it."""

    task_ref: str | None  # Conveyor's task id, from the task's data
    annotation: LsAnnotation


@dataclass
class Taken:
    """What :func:`take_annotations` did: stored, refused, already known."""

    stored: int = 0
    refused: int = 0
    duplicates: int = 0
    withdrawn: int = 0

    def add(self, other: Taken) -> None:
        self.stored += other.stored
        self.refused += other.refused
        self.duplicates += other.duplicates
        self.withdrawn += other.withdrawn


class _Users:
    """Label Studio user ids -> the annotator ids Conveyor stores (``label-studio:<email>``)."""

    def __init__(self) -> None:
        self.names: dict[tuple[str, int], str] = {}

    async def name(self, api: LabelStudioApi, user_id: int | None) -> str:
        if user_id is None:
            return "label-studio:unknown"
        key = (api.base_url, user_id)
        if key not in self.names:
            try:
                user = await api.get_user(user_id)
                self.names[key] = f"label-studio:{user.email or user.username or user_id}"
            except LabelStudioError:
                return f"label-studio:user-{user_id}"
        return self.names[key]


users = _Users()


def receipt_key(annotation: LsAnnotation) -> str:
    """One version of one Label Studio annotation (its id and when it last changed)."""
    stamp = annotation.updated_at.isoformat() if annotation.updated_at else "-"
    return f"ls:{annotation.id}:{stamp}"


async def take_annotations(labeling: Labeling, vendor: Vendor, seen: Iterable[Seen]) -> Taken:
    """Store each annotation version not stored yet (or refuse and record it)."""
    taken = Taken()
    api = label_studio_api(labeling, vendor)
    for item in seen:
        if item.annotation.was_cancelled:
            continue  # a skipped task is not an answer
        annotator = await users.name(api, item.annotation.completed_by)
        try:
            outcome = await _take_one(labeling, vendor, item, annotator)
        except Refusal as refusal:
            outcome = await _refuse(labeling, vendor, item.annotation, refusal)
        setattr(taken, outcome, getattr(taken, outcome) + 1)
    return taken


async def _refuse(
    labeling: Labeling, vendor: Vendor, annotation: LsAnnotation, refusal: Refusal
) -> str:
    """Record a refusal once per annotation version (reconcile sees it again every round)."""
    key = receipt_key(annotation)
    async with labeling.units.begin() as uow:
        first = await answers_repo.claim_receipt(
            uow.session, vendor.id, key, {"refused": refusal.code}
        )
    if not first:
        return "duplicates"
    await record_refusal(labeling, refusal, vendor_id=vendor.id, delivery_id=key)
    return "refused"


async def _take_one(labeling: Labeling, vendor: Vendor, item: Seen, annotator: str) -> str:
    """``stored`` or ``duplicates``; raises a Refusal (recorded by the caller)."""
    annotation = item.annotation
    task_id = _task_id(item.task_ref)
    async with labeling.units.read() as session:
        rows = await answers_repo.tasks_to_answer(session, vendor.id, [task_id])
    task = rows.get(task_id)
    if task is None:
        raise Refusal(
            404,
            "task_not_found",
            f"no task {task_id} of this vendor",
            tasks=[(task_id, None, None)],
        )
    about: list[tuple[uuid.UUID, str | None, str | None]] = [
        (task.task_id, str(task.asset_id), task.traceparent)
    ]
    spec = await pinned_spec(labeling, task.ontology_id, task.ontology_version)
    shapes = _shapes(spec, task, annotation, about)
    now = datetime.now(UTC)
    async with labeling.units.begin() as uow:
        key = receipt_key(annotation)
        if not await answers_repo.claim_receipt(uow.session, vendor.id, key, {"stored": True}):
            return "duplicates"
        previous = await repo.latest_of_ref(uow.session, vendor.id, str(annotation.id))
        if previous is None:
            previous = await _first_version_check(uow, vendor, task, annotator, now, about)
        elif task.task_state == "cancelled":
            raise Refusal(409, "task_cancelled", f"task {task.task_id} was cancelled", tasks=about)
        if previous is not None and previous.shapes == shapes and previous.withdrawn_at is None:
            return "duplicates"  # the task moved in Label Studio, the answer did not
        row = {
            "id": uuid.uuid4(),
            "task_id": task.task_id,
            "attempt": task.attempt,
            "vendor_id": vendor.id,
            "annotator_id": annotator,
            "shapes": shapes,
            "delivery_id": key,
            "vendor_submitted_at": annotation.updated_at or annotation.created_at,
            "received_at": now,
            "lead_time_seconds": (now - (task.dispatched_at or task.assigned_at)).total_seconds(),
            "version": previous.version + 1 if previous else 1,
            "vendor_ref": str(annotation.id),
            "supersedes": previous.id if previous else None,
        }
        await answers_repo.insert_annotations(uow.session, [row])
        emit_submitted(uow, vendor.name, task, row)
    return "stored"


def _task_id(ref: str | None) -> uuid.UUID:
    try:
        return uuid.UUID(str(ref))
    except ValueError:
        raise Refusal(
            404,
            "task_not_found",
            "the Label Studio task names no Conveyor task (data.conveyor_task_id)",
        ) from None


def _shapes(
    spec: OntologySpec,
    task: TaskToAnswer,
    annotation: LsAnnotation,
    about: list[tuple[uuid.UUID, str | None, str | None]],
) -> list[dict[str, Any]]:
    """Canonical shapes of an LS annotation, or a 422 Refusal naming every problem."""
    converted = shapes_from_results(spec, annotation.result, width=task.width, height=task.height)
    shapes, found = validate_shapes(spec, converted.shapes, width=task.width, height=task.height)
    problems = [p.model_dump() for p in (*converted.problems, *found)]
    if problems:
        raise Refusal(
            422,
            "invalid_annotation",
            f"{len(problems)} problem(s) in Label Studio annotation {annotation.id}",
            {"problems": problems},
            tasks=about,
            problems=problems,
        )
    return shapes


async def _first_version_check(
    uow: UnitOfWork,
    vendor: Vendor,
    task: TaskToAnswer,
    annotator: str,
    now: datetime,
    about: list[tuple[uuid.UUID, str | None, str | None]],
) -> StoredVersion | None:
    """A Label Studio annotation seen for the first time: may it answer the task?

    It may if the task's assignment is open (the task is submitted by it), or if the task's
    only answer so far was withdrawn (deleted in Label Studio; this one replaces it).
    """
    if await repo.annotator_answered_sibling(uow.session, task.task_id, annotator):
        raise Refusal(
            409,
            "same_annotator",
            f"{annotator} already labeled another replica of this asset; replicas need "
            "different people",
            tasks=about,
        )
    if task.outcome == "answered":
        previous = await repo.latest_of_task(uow.session, vendor.id, task.task_id)
        if previous is not None and previous.withdrawn_at is not None:
            return previous
        raise Refusal(
            409, "task_already_answered", f"task {task.task_id} was answered already", tasks=about
        )
    if task.outcome == "cancelled" or task.task_state == "cancelled":
        raise Refusal(409, "task_cancelled", f"task {task.task_id} was cancelled", tasks=about)
    if task.outcome != "open" or (
        task.lease_expires_at is not None and task.lease_expires_at <= now
    ):
        raise Refusal(
            409, "task_expired", f"the lease of task {task.task_id} has ended", tasks=about
        )
    done = await answers_repo.submit_tasks(
        uow.session, vendor.id, [(task.task_id, task.attempt)], now
    )
    if task.task_id not in done:
        raise Refusal(
            409,
            "task_already_answered",
            f"task {task.task_id} was answered or expired meanwhile",
            tasks=about,
        )
    return None


async def withdraw_annotations(labeling: Labeling, vendor: Vendor, refs: Iterable[str]) -> int:
    """Mark the stored versions of deleted Label Studio annotations withdrawn (once each)."""
    withdrawn = 0
    for ref in refs:
        async with labeling.units.begin() as uow:
            latest = await repo.latest_of_ref(uow.session, vendor.id, ref)
            if latest is None or latest.withdrawn_at is not None:
                continue
            now = datetime.now(UTC)
            await repo.withdraw(uow.session, latest.id, now)
            rows = await answers_repo.tasks_to_answer(uow.session, vendor.id, [latest.task_id])
            task = rows.get(latest.task_id)
            if task is None:
                continue
            uow.emit(
                AnnotationWithdrawnV1(
                    annotation_id=latest.id,
                    task_id=latest.task_id,
                    job_id=task.job_id,
                    asset_id=task.asset_id,
                    vendor_id=vendor.id,
                    annotator_id=latest.annotator_id,
                    version=latest.version,
                    vendor_ref=ref,
                    reason=WITHDRAWN_REASON,
                    withdrawn_at=now,
                ),
                subject=str(task.asset_id),
                actor=f"vendor:{vendor.name}",
                key=str(task.task_id),
                traceparent=task.traceparent,
            )
            withdrawn += 1
    return withdrawn


# --------------------------------------------------------------------------- the webhook


class LabelStudioAnswer(BaseModel):
    """What a Label Studio webhook call did: annotation versions stored, refused (recorded on
    their tasks), already known, withdrawn."""

    action: str
    stored: int = 0
    refused: int = 0
    duplicates: int = 0
    withdrawn: int = 0


@dataclass(frozen=True)
class LabelStudioCall:
    """A Label Studio webhook request as the route hands it over."""

    vendor_id: uuid.UUID
    chunks: AsyncIterator[bytes]
    content_length: str | None
    token: str | None
    client: str


async def receive_event(labeling: Labeling, call: LabelStudioCall) -> LabelStudioAnswer:
    """Check and take one Label Studio webhook call; refusals are recorded and raised."""
    vendor: Vendor | None = None
    try:
        raw = await read_body(call, labeling.settings.webhook_max_body_bytes)
        async with labeling.units.read() as session:
            vendor = await vendors_repo.vendor_by_id(session, call.vendor_id)
        if (
            vendor is None
            or vendor.kind != KIND
            or not vendor.enabled
            or not call.token
            or not hmac.compare_digest(call.token.encode(), vendor.secret.encode())
        ):
            vendor = None
            raise Refusal(401, "invalid_token", f"a valid {TOKEN_HEADER} header is required")
        try:
            payload = json.loads(raw)
            action = payload["action"]
        except (ValueError, KeyError, TypeError):
            raise Refusal(
                422, "invalid_payload", "the body is not a Label Studio webhook payload"
            ) from None
        return await _act(labeling, vendor, action, payload)
    except Refusal as refusal:
        await record_refusal(
            labeling,
            refusal,
            vendor_id=vendor.id if vendor is not None else None,
            delivery_id=None,
            sample_key=None if vendor is not None else (str(call.vendor_id), call.client),
        )
        raise refusal.as_error() from None


async def _act(
    labeling: Labeling, vendor: Vendor, action: object, payload: dict[str, Any]
) -> LabelStudioAnswer:
    if action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
        try:
            annotation = LsAnnotation.model_validate(payload["annotation"])
            data = payload["task"].get("data") or {}
        except (KeyError, TypeError, AttributeError, ValueError):
            raise Refusal(
                422, "invalid_payload", f"{action} without a readable annotation and task"
            ) from None
        taken = await take_annotations(labeling, vendor, [Seen(data.get(TASK_KEY), annotation)])
        return LabelStudioAnswer(action=action, **taken.__dict__)
    if action == "ANNOTATIONS_DELETED":
        found = payload.get("annotations")
        if not isinstance(found, list):
            raise Refusal(422, "invalid_payload", "ANNOTATIONS_DELETED without annotations")
        refs = [str(a["id"]) for a in found if isinstance(a, dict) and "id" in a]
        withdrawn = await withdraw_annotations(labeling, vendor, refs)
        return LabelStudioAnswer(action=action, withdrawn=withdrawn)
    return LabelStudioAnswer(action=str(action))  # other actions carry no answers


# --------------------------------------------------------------------------- reconcile


async def reconcile_project(labeling: Labeling, vendor: Vendor, row: ProjectRow) -> Taken:
    """Take what a project holds that Conveyor missed, note deletions, advance its cursor.

    Tasks are judged a page at a time: one query says which of the page's annotation versions
    are known already and which stored answers of its tasks are live, so a page of tasks with
    nothing new costs two queries.
    """
    api = label_studio_api(labeling, vendor)
    taken = Taken()
    newest = row.synced_until
    page: list[LsTask] = []
    async for task in api.tasks_updated_since(row.project_id, row.synced_until - CURSOR_OVERLAP):
        page.append(task)
        if task.updated_at is not None and task.updated_at > newest:
            newest = task.updated_at
        if len(page) >= RECONCILE_PAGE:
            taken.add(await _reconcile_page(labeling, vendor, api, page))
            page = []
    if page:
        taken.add(await _reconcile_page(labeling, vendor, api, page))
    if newest > row.synced_until:
        async with labeling.units.begin() as uow:
            await repo.advance_cursor(uow.session, row, newest)
    return taken


async def _reconcile_page(
    labeling: Labeling, vendor: Vendor, api: LabelStudioApi, tasks: Sequence[LsTask]
) -> Taken:
    seen = [Seen(t.data.get(TASK_KEY), a) for t in tasks for a in t.annotations]
    by_task: dict[uuid.UUID, set[str]] = {}
    for task in tasks:
        with contextlib.suppress(ValueError):
            by_task.setdefault(uuid.UUID(str(task.data.get(TASK_KEY))), set()).update(
                str(a.id) for a in task.annotations
            )
    async with labeling.units.read() as session:
        known = await answers_repo.known_receipts(
            session, vendor.id, [receipt_key(s.annotation) for s in seen]
        )
        live = await repo.live_refs_of_tasks(session, vendor.id, list(by_task))
    fresh = [s for s in seen if receipt_key(s.annotation) not in known]
    taken = await take_annotations(labeling, vendor, fresh)
    taken.duplicates += len(seen) - len(fresh)
    missing = sorted(ref for task_id, refs in live.items() for ref in refs - by_task[task_id])
    # A Conveyor task may have two Label Studio tasks (an import that landed after its retry
    # looked) on different pages: only what Label Studio says is gone was deleted.
    gone = [ref for ref in missing if not await api.annotation_exists(int(ref))]
    taken.withdrawn += await withdraw_annotations(labeling, vendor, gone)
    return taken


async def reconcile_all(labeling: Labeling) -> Taken:
    """Reconcile every project of every enabled Label Studio vendor once."""
    async with labeling.units.read() as session:
        rows = await repo.projects_to_sync(session)
        vendors = {
            v.id: v
            for v in [
                await vendors_repo.vendor_by_id(session, i) for i in {r.vendor_id for r in rows}
            ]
            if v is not None
        }
    taken = Taken()
    for row in rows:
        try:
            taken.add(await reconcile_project(labeling, vendors[row.vendor_id], row))
        except LabelStudioError:
            log.warning("project %s: reconcile failed; next round", row.project_id, exc_info=True)
    return taken


async def run_label_studio_sync(labeling: Labeling) -> None:
    """Reconcile at start (what came in while the service was down), then periodically."""
    while True:
        try:
            taken = await reconcile_all(labeling)
            if taken.stored or taken.refused or taken.withdrawn:
                log.info("Label Studio reconcile: %s", taken)
        except Exception:
            log.exception("Label Studio reconcile failed")
        await asyncio.sleep(labeling.settings.label_studio_sync_interval_seconds)
