"""Pre-labels: predictions attached to assets, sent with their tasks, and the uncertainty
that orders ``uncertainty`` jobs' queues."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.labeling_dispatch.context import Labeling
from services.labeling_dispatch.domain.tasks import prediction_margin, priority_score
from services.labeling_dispatch.models import KnownAsset, Prediction
from services.labeling_dispatch.repository import assets as repo
from services.labeling_dispatch.repository import tasks as task_repo
from shared.auth import Principal
from shared.errors import ApiError


@dataclass(frozen=True)
class PredictionIn:
    """One model's shapes (with scores) for one asset."""

    asset_id: uuid.UUID
    model: str
    shapes: list[dict[str, Any]]


def score_problems(shapes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Shapes whose score is missing or not a number in [0, 1]."""
    problems = []
    for index, shape in enumerate(shapes):
        score = shape.get("score")
        if (
            isinstance(score, bool)
            or not isinstance(score, int | float)
            or not math.isfinite(score)
            or not 0 <= score <= 1
        ):
            problems.append(
                {"index": index, "code": "bad_score", "message": "score must be a number in [0, 1]"}
            )
    return problems


async def attach_predictions(
    labeling: Labeling, principal: Principal, items: Sequence[PredictionIn]
) -> list[Prediction]:
    """Store predictions (replacing an asset's earlier ones from the same model) and re-order
    the queued tasks of ``uncertainty`` jobs on those assets."""
    problems = [
        {"prediction": i, **p} for i, item in enumerate(items) for p in score_problems(item.shapes)
    ]
    if problems:
        raise ApiError(
            422, "invalid_prediction", "predictions have problems", {"problems": problems}
        )
    last = {(p.asset_id, p.model): p for p in items}
    async with labeling.units.begin() as uow:
        ids = sorted({p.asset_id for p in items})
        known = {a.id: a for a in await repo.assets_by_ids(uow.session, ids)}
        missing = [str(i) for i in ids if not _visible(known.get(i), principal)]
        if missing:
            raise ApiError(404, "asset_not_found", "no such assets", {"asset_ids": missing})
        await repo.upsert_predictions(
            uow.session,
            [
                {
                    "asset_id": p.asset_id,
                    "model": p.model,
                    "shapes": p.shapes,
                    "margin": prediction_margin(p.shapes),
                    "created_by": principal.name,
                }
                for p in last.values()
            ],
        )
        margins = await repo.lowest_margins(uow.session, ids)
        for asset_id, margin in margins.items():
            score = priority_score("uncertainty", 0.0, margin)
            await task_repo.reprioritise_queued(uow.session, asset_id, score)
        stored = [
            row for asset_id in ids for row in await repo.predictions_of(uow.session, asset_id)
        ]
    return [row for row in stored if (row.asset_id, row.model) in last]


def _visible(asset: KnownAsset | None, principal: Principal) -> bool:
    return asset is not None and principal.sees(asset.dataset_id)


async def predictions_of(
    labeling: Labeling, principal: Principal, asset_id: uuid.UUID
) -> list[Prediction]:
    """An asset's predictions, one per model; 404 for an unknown or unseen asset."""
    async with labeling.units.read() as session:
        asset = await repo.asset_by_id(session, asset_id)
        if not _visible(asset, principal):
            raise ApiError(404, "asset_not_found", f"no asset {asset_id}")
        return await repo.predictions_of(session, asset_id)
