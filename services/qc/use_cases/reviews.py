"""The review queue: what people read of an asset's review, and what they decide.

Every decision goes through :mod:`services.qc.use_cases.decisions` (the one path for the
accepted / rejected / rework events) inside one unit of work that holds the review row locked,
so two reviewers deciding the same asset at once are served in turn and the second meets a 409.
Only an asset in ``review`` can be decided: the others wait for answers (``waiting``,
``rework``) or are decided already.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.qc.context import Qc
from services.qc.models import AssetReview, JudgedAnnotation, QcJob, QcTask
from services.qc.repository import annotations as answers_repo
from services.qc.repository import mirror as mirror_repo
from services.qc.repository import review_queries as repo
from services.qc.repository import reviews as reviews_repo
from services.qc.repository import versions as versions_repo
from services.qc.repository.review_queries import ReviewFilter, ReviewPosition
from services.qc.use_cases import decisions
from shared.auth import Principal
from shared.errors import ApiError
from shared.paging import Cursor
from shared.uow import UnitOfWork

# The state in which a person may decide.
DECIDABLE = "review"


@dataclass(frozen=True)
class ReviewDetail:
    """A review with the answers it is about and the asset's tasks in the job."""

    review: AssetReview
    annotations: list[JudgedAnnotation]
    tasks: list[QcTask]


# --------------------------------------------------------------------------- reading


async def list_reviews(
    qc: Qc,
    principal: Principal,
    limit: int,
    cursor: str | None,
    *,
    job_id: uuid.UUID | None,
    state: str | None,
    dataset: str | None,
) -> tuple[list[AssetReview], str | None]:
    """A page of the reviews the caller may see, and the cursor of the next page."""
    after = _decode(cursor) if cursor else None
    async with qc.units.read() as session:
        dataset_id = None
        if dataset is not None:
            found = await versions_repo.dataset_by_slug_or_id(session, dataset)
            if found is None or not principal.sees(found.id):
                raise ApiError(404, "dataset_not_found", f"no dataset {dataset!r}")
            dataset_id = found.id
        visible = None
        if principal.datasets is not None:
            visible = [uuid.UUID(d) for d in principal.datasets]
        where = ReviewFilter(job_id=job_id, state=state, dataset_id=dataset_id, datasets=visible)
        rows = await repo.list_reviews(session, limit + 1, after, where)
    next_cursor = _encode(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def _encode(last: AssetReview) -> str:
    # the shared cursor holds one id; the job id rides after it (a review's key is two ids)
    return f"{Cursor(last.updated_at, last.asset_id).encode()}.{last.job_id.hex}"


def _decode(text: str) -> ReviewPosition:
    head, _, job = text.partition(".")
    position = Cursor.decode(head)
    try:
        job_id = uuid.UUID(hex=job)
    except ValueError as exc:
        raise ApiError(400, "invalid_cursor", "cursor is not one this API returned") from exc
    return ReviewPosition(position.created_at, position.id, job_id)


async def review_detail(
    qc: Qc, principal: Principal, job_id: uuid.UUID, asset_id: uuid.UUID
) -> ReviewDetail:
    """An asset's review in a job with every live answer; 404 if the caller may not see it."""
    async with qc.units.read() as session:
        review = _visible(
            principal, job_id, asset_id, await repo.review_of(session, job_id, asset_id)
        )
        return await _detail(session, review)


async def _detail(session: AsyncSession, review: AssetReview) -> ReviewDetail:
    return ReviewDetail(
        review,
        await answers_repo.live_answers(session, review.job_id, review.asset_id),
        await repo.tasks_of(session, review.job_id, review.asset_id),
    )


def _visible(
    principal: Principal, job_id: uuid.UUID, asset_id: uuid.UUID, review: AssetReview | None
) -> AssetReview:
    if review is None or not principal.sees(review.dataset_id):
        raise ApiError(404, "review_not_found", f"asset {asset_id} has no review in job {job_id}")
    return review


# --------------------------------------------------------------------------- deciding


@dataclass(frozen=True)
class _Open:
    """A review locked for a decision, with its job and the answers that count."""

    review: AssetReview
    job: QcJob
    annotations: list[JudgedAnnotation]


async def _open_for_decision(
    uow: UnitOfWork, principal: Principal, job_id: uuid.UUID, asset_id: uuid.UUID, action: str
) -> _Open:
    review = await reviews_repo.locked_review(uow.session, job_id, asset_id)
    review = _visible(principal, job_id, asset_id, review)
    if review.state != DECIDABLE:
        raise ApiError(
            409,
            "review_not_open",
            f"cannot {action} asset {asset_id} in job {job_id}: its review is {review.state}",
            {"state": review.state},
        )
    job = await mirror_repo.job_by_id(uow.session, job_id)
    if job is None:  # reviews are made from the job's tasks, so QC knows the job
        raise ApiError(404, "job_not_found", f"QC knows no job {job_id}")
    annotations = await answers_repo.live_answers(uow.session, job_id, asset_id)
    return _Open(review, job, annotations)


async def accept_review(
    qc: Qc,
    principal: Principal,
    job_id: uuid.UUID,
    asset_id: uuid.UUID,
    *,
    shapes: list[dict[str, Any]] | None,
    comment: str | None,
) -> ReviewDetail:
    """Accept the consensus label set, or ``shapes`` instead: they become the asset's labels."""
    async with qc.units.begin() as uow:
        found = await _open_for_decision(uow, principal, job_id, asset_id, "accept")
        if shapes is not None:
            classes = await repo.ontology_classes(
                uow.session, found.job.ontology_id, found.job.ontology_version
            )
            _check_shapes(shapes, classes)
            labels = shapes
        else:
            labels = _label_set(found)
        await decisions.accept(
            uow,
            found.review,
            found.job,
            labels,
            [a.id for a in found.annotations],
            decided_by=principal.name,
            automatic=False,
            comment=comment,
        )
        await uow.session.flush()
        return await _detail(uow.session, found.review)


def _label_set(found: _Open) -> list[dict[str, Any]]:
    """What accepting without shapes accepts: the consensus, or the one answer there is."""
    if found.review.label_set is not None:
        return list(found.review.label_set)
    if len(found.annotations) == 1:
        return list(found.annotations[0].shapes)
    raise ApiError(
        409,
        "no_label_set",
        "this asset has no consensus label set to accept: send the shapes to accept",
        {"answers": len(found.annotations)},
    )


async def reject_review(
    qc: Qc, principal: Principal, job_id: uuid.UUID, asset_id: uuid.UUID, *, comment: str
) -> ReviewDetail:
    """Reject: the answers never become the dataset's labels."""
    async with qc.units.begin() as uow:
        found = await _open_for_decision(uow, principal, job_id, asset_id, "reject")
        await decisions.reject(
            uow,
            found.review,
            [a.id for a in found.annotations],
            decided_by=principal.name,
            comment=comment,
        )
        await uow.session.flush()
        return await _detail(uow.session, found.review)


async def send_back_review(
    qc: Qc,
    principal: Principal,
    job_id: uuid.UUID,
    asset_id: uuid.UUID,
    *,
    comment: str,
    task_ids: Sequence[uuid.UUID] | None,
    vendor_id: uuid.UUID | None,
) -> ReviewDetail:
    """Send the asset's tasks (all of them answered, or ``task_ids``) back for rework, to the
    vendors that answered them or to ``vendor_id``."""
    async with qc.units.begin() as uow:
        found = await _open_for_decision(uow, principal, job_id, asset_id, "send back")
        answered = [a.task_id for a in found.annotations]
        if not answered:  # nothing counts now: every task of the asset goes back
            answered = [t.id for t in await repo.tasks_of(uow.session, job_id, asset_id)]
        if not answered:
            raise ApiError(409, "no_tasks", f"asset {asset_id} has no tasks in job {job_id}")
        chosen = list(dict.fromkeys(task_ids)) if task_ids else answered
        unknown = [str(t) for t in chosen if t not in set(answered)]
        if unknown:
            raise ApiError(
                422,
                "unknown_task",
                f"task {unknown[0]} is not a task of asset {asset_id} in job {job_id}",
                {"unknown": unknown, "tasks": [str(t) for t in answered]},
            )
        await decisions.send_back(
            uow,
            found.review,
            chosen,
            decided_by=principal.name,
            comment=comment,
            vendor_id=vendor_id,
        )
        await uow.session.flush()
        return await _detail(uow.session, found.review)


# --------------------------------------------------------------------------- accepted shapes

MAX_POLYGON_POINTS = 10_000


def _check_shapes(shapes: list[dict[str, Any]], classes: list[str] | None) -> None:
    """Shapes a reviewer accepts instead of the consensus are the dataset's labels from then on:
    each needs a class of the job's ontology (when QC knows it), a type, and for boxes and
    polygons a finite geometry an export can write (422 naming each problem otherwise)."""
    problems = []
    for index, shape in enumerate(shapes):
        problem = _shape_problem(shape, classes)
        if problem:
            problems.append({"index": index, "problem": problem})
    if "\\u0000" in json.dumps(shapes):
        problems.append({"index": None, "problem": "the shapes hold a NUL character"})
    if problems:
        raise ApiError(
            422,
            "invalid_shapes",
            f"{len(problems)} problem(s) in the shapes; nothing was accepted",
            {"problems": problems},
        )


def _shape_problem(shape: dict[str, Any], classes: list[str] | None) -> str | None:
    name, kind = shape.get("class"), shape.get("type")
    if not isinstance(name, str) or not isinstance(kind, str):
        return "a shape needs a 'class' and a 'type' (strings)"
    if classes is not None and name not in classes:
        return f"the job's ontology has no class {name!r}"
    if kind == "bbox":
        box = shape.get("bbox")
        values: list[Any] = (
            [box.get(k) for k in ("x", "y", "width", "height")] if isinstance(box, dict) else []
        )
        numbers = [float(v) for v in values if _finite(v)]
        if len(numbers) != 4:
            return "a bbox needs finite numbers x, y, width, height"
        if numbers[2] <= 0 or numbers[3] <= 0:
            return "a bbox needs a positive width and height"
    elif kind == "polygon":
        points = shape.get("points")
        if (
            not isinstance(points, list)
            or not 3 <= len(points) <= MAX_POLYGON_POINTS
            or not all(
                isinstance(p, list) and len(p) == 2 and all(_finite(c) for c in p) for p in points
            )
        ):
            return "a polygon needs 3 or more points [x, y] of finite numbers"
    return None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
