"""Cleaned images into jobs' queues: replicas, gold tasks, priority, one event per task.

Called inside a caller's unit of work (the consumer's run of cleaned assets, or a job's
creation), so the tasks, the job counters and the TASK_CREATED events commit with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from services.labeling_dispatch.domain.tasks import (
    draw_gold,
    gold_tasks_due,
    priority_score,
)
from services.labeling_dispatch.models import Job, KnownAsset
from services.labeling_dispatch.repository import assets as asset_repo
from services.labeling_dispatch.repository import jobs as job_repo
from services.labeling_dispatch.repository import tasks as task_repo
from shared.events import TaskCreatedV1
from shared.uow import UnitOfWork


def labelable(asset: KnownAsset) -> bool:
    """Whether an asset becomes tasks: cleaned images (a video's frames are images of their own)."""
    return asset.state == "cleaned" and (asset.media_type or "").startswith("image/")


def arrival(moment: datetime | None) -> float:
    """Seconds since the epoch of when an asset was cleaned (0 if unknown)."""
    return moment.timestamp() if moment is not None else 0.0


async def enqueue_into_jobs(uow: UnitOfWork, assets: Sequence[KnownAsset], *, actor: str) -> int:
    """Queue these assets in every open or paused job of their datasets; how many tasks."""
    wanted = [a for a in assets if labelable(a)]
    datasets = sorted({a.dataset_id for a in wanted})
    queued = 0
    for job in await job_repo.jobs_taking_assets(uow.session, datasets):
        queued += await enqueue(
            uow, job, [a for a in wanted if a.dataset_id == job.dataset_id], actor=actor
        )
    return queued


async def enqueue(uow: UnitOfWork, job: Job, assets: Sequence[KnownAsset], *, actor: str) -> int:
    """Queue assets in one job (its row locked by the caller): ``overlap`` replicas each, and
    the gold tasks that fall due. Assets already queued in the job are skipped. How many tasks.
    """
    wanted = [a for a in assets if labelable(a)]
    seen = await task_repo.assets_with_tasks(uow.session, job.id, [a.id for a in wanted])
    wanted = [a for a in wanted if a.id not in seen]
    if not wanted:
        return 0
    margins = {}
    if job.priority == "uncertainty":
        margins = await asset_repo.lowest_margins(uow.session, [a.id for a in wanted])
    rows: list[dict[str, Any]] = []
    for asset in wanted:
        score = priority_score(job.priority, arrival(asset.cleaned_at), margins.get(asset.id))
        rows += [
            _task_row(job, asset, replica, score, gold=False) for replica in range(job.overlap)
        ]
    gold_rows = await _gold_rows(
        uow, job, regular=len(rows), scores=[r["priority_score"] for r in rows]
    )
    every = rows + gold_rows
    await task_repo.insert_tasks(
        uow.session,
        [{k: v for k, v in r.items() if k not in ("asset", "gold_shapes")} for r in every],
    )
    await job_repo.add_task_counts(uow.session, job.id, len(rows), len(gold_rows))
    for row in every:
        asset = row["asset"]
        uow.emit(
            TaskCreatedV1(
                task_id=row["id"],
                job_id=job.id,
                asset_id=asset.id,
                dataset_id=job.dataset_id,
                replica=row["replica"],
                gold=row["gold"],
                gold_shapes=row.get("gold_shapes"),
            ),
            subject=str(row["id"]),
            actor=actor,
            traceparent=asset.traceparent,
        )
    return len(every)


def _task_row(
    job: Job, asset: KnownAsset, replica: int, score: float, *, gold: bool
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "job_id": job.id,
        "asset_id": asset.id,
        "asset": asset,
        "replica": replica,
        "gold": gold,
        "state": "queued",
        "priority_score": score,
        "excluded_vendors": [],
        "attempt": 0,
    }


async def _gold_rows(
    uow: UnitOfWork, job: Job, *, regular: int, scores: list[float]
) -> list[dict[str, Any]]:
    """The gold tasks due once ``regular`` more tasks are queued, spread among their scores
    so that they reach vendors interleaved with the regular ones, not all at once."""
    due = gold_tasks_due(job.regular_tasks + regular, job.gold_tasks, job.gold_ratio)
    if due == 0:
        return []
    uses = await job_repo.gold_uses(uow.session, job.id)
    drawn = draw_gold(uses, due)
    if not drawn:
        return []
    gold_assets = {a.id: a for a in await job_repo.gold_assets(uow.session, job.id)}
    answers = await job_repo.gold_answers(uow.session, job.id)
    ordered = sorted(scores)
    rows = []
    for i, asset_id in enumerate(drawn):
        asset = gold_assets.get(asset_id)
        if asset is None:  # checked at creation; a mirror row cannot disappear
            continue
        score = ordered[min(len(ordered) - 1, (i + 1) * len(ordered) // (len(drawn) + 1))]
        rows.append(_task_row(job, asset, 0, score, gold=True) | {"gold_shapes": answers[asset_id]})
    counted: dict[uuid.UUID, int] = {}
    for row in rows:
        counted[row["asset_id"]] = counted.get(row["asset_id"], 0) + 1
    await job_repo.count_gold_uses(uow.session, job.id, counted)
    return rows
