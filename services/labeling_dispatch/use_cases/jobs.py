"""Labeling jobs: create (queueing the dataset's cleaned images at once), list, read with
progress, pause, resume, cancel."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.labeling_dispatch.context import Labeling
from services.labeling_dispatch.domain.ontology import OntologySpec, validate_shapes
from services.labeling_dispatch.domain.tasks import (
    OPEN_TASK_STATES,
    IllegalTransition,
    job_transition,
)
from services.labeling_dispatch.models import Job, KnownAsset, KnownDataset
from services.labeling_dispatch.repository import assets as asset_repo
from services.labeling_dispatch.repository import jobs as repo
from services.labeling_dispatch.repository import ontologies as ontology_repo
from services.labeling_dispatch.repository import tasks as task_repo
from services.labeling_dispatch.repository import vendors as vendor_repo
from services.labeling_dispatch.repository.tasks import Progress
from services.labeling_dispatch.use_cases.enqueueing import enqueue, labelable
from shared.auth import Principal
from shared.errors import ApiError
from shared.events import JobCreatedV1, JobStateChangedV1
from shared.paging import Cursor

Priority = Literal["arrival", "uncertainty"]


@dataclass(frozen=True)
class GoldItemIn:
    """A known-answer asset of the gold set and its answer (canonical shapes)."""

    asset_id: uuid.UUID
    shapes: list[dict[str, Any]]


@dataclass(frozen=True)
class JobRequest:
    """What a job is made of, as people ask for it (references not resolved yet)."""

    name: str
    dataset: str  # slug or id
    ontology: str  # id or name
    ontology_version: int | None
    vendor_ids: list[uuid.UUID]
    overlap: int = 1
    gold_ratio: float = 0.0
    gold_set: list[GoldItemIn] = field(default_factory=list)
    priority: Priority = "arrival"
    lease_seconds: int | None = None


@dataclass(frozen=True)
class JobView:
    """A job with its vendors and, when asked for, its progress."""

    job: Job
    vendor_ids: list[uuid.UUID]
    progress: list[Progress] = field(default_factory=list)


async def create_job(labeling: Labeling, principal: Principal, request: JobRequest) -> JobView:
    """Create a job and queue every image of its dataset already cleaned, in one unit of work."""
    async with labeling.units.begin() as uow:
        session = uow.session
        dataset = await _visible_dataset(session, principal, request.dataset)
        ontology_id, version, spec = await _pinned(
            session, request.ontology, request.ontology_version
        )
        vendor_ids = await _usable_vendors(session, request.vendor_ids, request.overlap)
        if request.gold_ratio > 0 and not request.gold_set:
            raise ApiError(422, "gold_set_required", "a gold ratio above 0 needs a gold set")
        # taken before reading the dataset's assets: a verdict committing meanwhile waits and
        # then finds this job, or committed first and is read here
        await asset_repo.lock_dataset(session, dataset.id)
        gold = await _checked_gold(session, dataset.id, spec, request.gold_set)
        job = Job(
            id=uuid.uuid4(),
            name=request.name,
            dataset_id=dataset.id,
            ontology_id=ontology_id,
            ontology_version=version,
            overlap=request.overlap,
            gold_ratio=request.gold_ratio,
            priority=request.priority,
            lease_seconds=request.lease_seconds or labeling.settings.default_lease_seconds,
            state="open",
            regular_tasks=0,
            gold_tasks=0,
            created_by=principal.name,
        )
        await repo.insert_job(session, job, vendor_ids, [(g.asset_id, g.shapes) for g in gold])
        uow.emit(
            JobCreatedV1(
                job_id=job.id,
                name=job.name,
                dataset_id=dataset.id,
                ontology_id=ontology_id,
                ontology_version=version,
                vendor_ids=vendor_ids,
                overlap=job.overlap,
                gold_ratio=job.gold_ratio,
                priority=request.priority,
                lease_seconds=job.lease_seconds,
                created_by=principal.name,
            ),
            subject=str(job.id),
            actor=principal.name,
        )
        cleaned = await asset_repo.cleaned_images(session, dataset.id)
        queued = await enqueue(uow, job, cleaned, actor=principal.name)
        await session.refresh(job)
    if queued:
        labeling.wake_dispatcher.set()
    return JobView(job, vendor_ids)


async def _visible_dataset(session: AsyncSession, principal: Principal, ref: str) -> KnownDataset:
    dataset = None
    try:
        dataset = await asset_repo.dataset_by_id(session, uuid.UUID(ref))
    except ValueError:
        dataset = await asset_repo.dataset_by_slug(session, ref)
    if dataset is None or not principal.sees(dataset.id):
        raise ApiError(404, "dataset_not_found", f"no dataset {ref!r}")
    return dataset


async def _pinned(
    session: AsyncSession, ref: str, version: int | None
) -> tuple[uuid.UUID, int, OntologySpec]:
    """The ontology's id, the version pinned (the latest unless given) and its spec."""
    key: uuid.UUID | str
    try:
        key = uuid.UUID(ref)
    except ValueError:
        key = ref
    ontology = await ontology_repo.ontology_by(session, key)
    if ontology is None:
        raise ApiError(404, "ontology_not_found", f"no ontology {ref!r}")
    number = version if version is not None else ontology.latest_version
    row = await ontology_repo.version(session, ontology.id, number)
    if row is None:
        raise ApiError(
            404, "ontology_version_not_found", f"{ontology.name} has no version {number}"
        )
    return ontology.id, number, OntologySpec.model_validate(row.spec)


async def _usable_vendors(
    session: AsyncSession, ids: Sequence[uuid.UUID], overlap: int
) -> list[uuid.UUID]:
    wanted = list(dict.fromkeys(ids))
    found = await vendor_repo.vendors_by_ids(session, wanted)
    unknown = [str(v) for v in wanted if v not in found]
    if unknown:
        raise ApiError(422, "unknown_vendor", "no such vendors", {"vendor_ids": unknown})
    disabled = [str(v) for v in wanted if not found[v].enabled]
    if disabled:
        raise ApiError(422, "vendor_disabled", "vendors are disabled", {"vendor_ids": disabled})
    if len(wanted) > 1 and overlap > len(wanted):
        # replicas go to different vendors; one vendor alone is told to use different annotators
        raise ApiError(
            422,
            "overlap_exceeds_vendors",
            f"overlap {overlap} needs as many vendors (or a single one); got {len(wanted)}",
        )
    return wanted


async def _checked_gold(
    session: AsyncSession, dataset_id: uuid.UUID, spec: OntologySpec, gold: Sequence[GoldItemIn]
) -> list[GoldItemIn]:
    """The gold set with its shapes normalised; 422 listing every problem otherwise."""
    if len({g.asset_id for g in gold}) != len(gold):
        raise ApiError(422, "invalid_gold_set", "an asset appears twice in the gold set")
    assets = {a.id: a for a in await asset_repo.assets_by_ids(session, [g.asset_id for g in gold])}
    problems: list[dict[str, Any]] = []
    checked = []
    for index, item in enumerate(gold):
        asset: KnownAsset | None = assets.get(item.asset_id)
        if asset is None or asset.dataset_id != dataset_id or not labelable(asset):
            problems.append(
                {
                    "gold_index": index,
                    "code": "unknown_gold_asset",
                    "message": f"{item.asset_id} is not a cleaned image of the job's dataset",
                }
            )
            continue
        shapes, found = validate_shapes(spec, item.shapes, width=asset.width, height=asset.height)
        problems += [
            {
                "gold_index": index,
                "shape_index": p.index,
                **p.model_dump(mode="json", exclude={"index"}),
            }
            for p in found
        ]
        checked.append(GoldItemIn(item.asset_id, shapes))
    if problems:
        raise ApiError(422, "invalid_gold_set", "the gold set has problems", {"problems": problems})
    return checked


async def list_jobs(
    labeling: Labeling,
    principal: Principal,
    limit: int,
    cursor: str | None,
    *,
    dataset: str | None,
    state: str | None,
) -> tuple[list[JobView], str | None]:
    """A page of the jobs the caller may see, and the cursor of the next page."""
    after = Cursor.decode(cursor) if cursor else None
    only = None if principal.datasets is None else [uuid.UUID(d) for d in principal.datasets]
    async with labeling.units.read() as session:
        dataset_id = None
        if dataset is not None:
            dataset_id = (await _visible_dataset(session, principal, dataset)).id
        rows = await repo.list_jobs(
            session, limit + 1, after, dataset_id=dataset_id, state=state, only=only
        )
        vendors = await repo.vendor_ids_of(session, [j.id for j in rows[:limit]])
    next_cursor = None
    if len(rows) > limit:
        next_cursor = Cursor(rows[limit - 1].created_at, rows[limit - 1].id).encode()
    return [JobView(j, vendors[j.id]) for j in rows[:limit]], next_cursor


async def get_job(labeling: Labeling, principal: Principal, job_id: uuid.UUID) -> JobView:
    """A job the caller may see, with its progress; 404 otherwise."""
    async with labeling.units.read() as session:
        job = await repo.job_by_id(session, job_id)
        if job is None or not principal.sees(job.dataset_id):
            raise job_not_found(job_id)
        vendors = await repo.vendor_ids_of(session, [job.id])
        progress = await task_repo.job_progress(session, job.id)
    return JobView(job, vendors[job.id], progress)


def job_not_found(job_id: uuid.UUID) -> ApiError:
    """The 404 for a job that does not exist or that the caller may not see."""
    return ApiError(404, "job_not_found", f"no job {job_id}")


async def change_job_state(
    labeling: Labeling,
    principal: Principal,
    job_id: uuid.UUID,
    target: Literal["open", "paused", "cancelled"],
) -> JobView:
    """Pause, resume or cancel a job (cancelling cancels its open tasks); 409 if it cannot."""
    async with labeling.units.begin() as uow:
        job = await repo.job_by_id(uow.session, job_id, lock=True)
        if job is None or not principal.sees(job.dataset_id):
            raise job_not_found(job_id)
        previous = job.state
        try:
            job_transition(previous, target)
        except IllegalTransition as exc:
            raise ApiError(
                409, "illegal_job_transition", str(exc), {"state": previous, "target": target}
            ) from exc
        await repo.set_job_state(uow.session, job.id, target)
        if target == "cancelled":
            await task_repo.cancel_open_tasks(
                uow.session, job.id, [s.value for s in OPEN_TASK_STATES]
            )
        uow.emit(
            JobStateChangedV1(
                job_id=job.id, state=target, previous_state=previous, changed_by=principal.name
            ),
            subject=str(job.id),
            actor=principal.name,
        )
        await uow.session.refresh(job)
        vendors = await repo.vendor_ids_of(uow.session, [job.id])
    if target == "open":
        labeling.wake_dispatcher.set()
    return JobView(job, vendors[job.id])
