"""Predictions (pre-labels from a model outside Conveyor): attach to assets, read back."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from services.labeling_dispatch.api.dependencies import LabelingDep, Uploader, Viewer
from services.labeling_dispatch.use_cases import predictions
from services.labeling_dispatch.use_cases.predictions import PredictionIn
from shared.errors import error_responses

router = APIRouter(tags=["predictions"])


class ScoredShape(BaseModel):
    """A canonical shape with the model's score (other fields as in the canonical format)."""

    model_config = ConfigDict(extra="allow")

    class_: str = Field(alias="class", min_length=1, max_length=128)
    type: str = Field(min_length=1, max_length=32)
    score: float = Field(ge=0.0, le=1.0)


class PredictionItem(BaseModel):
    """One model's shapes for one asset."""

    model_config = ConfigDict(extra="forbid")

    asset_id: uuid.UUID
    model: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")
    shapes: list[ScoredShape] = Field(max_length=10_000)


class PredictionBatch(BaseModel):
    """Predictions to attach; an asset's earlier ones from the same model are replaced."""

    model_config = ConfigDict(extra="forbid")

    predictions: list[PredictionItem] = Field(min_length=1, max_length=1000)


class PredictionOut(BaseModel):
    """A model's stored shapes for an asset and how uncertain they are."""

    model_config = ConfigDict(from_attributes=True)

    asset_id: uuid.UUID
    model: str
    shapes: list[dict[str, Any]]
    margin: float | None = Field(description="top score minus the second (1.0 with one score)")
    created_by: str
    created_at: datetime


class PredictionList(BaseModel):
    """Predictions, one per (asset, model)."""

    items: list[PredictionOut]


@router.post(
    "/v1/predictions",
    status_code=201,
    summary="Attach predictions to assets (uploader); uncertainty jobs re-order their queues",
    responses=error_responses(401, 403, 404, 422),
)
async def attach_predictions(
    body: PredictionBatch, principal: Uploader, labeling: LabelingDep
) -> PredictionList:
    items = [
        PredictionIn(
            p.asset_id, p.model, [s.model_dump(by_alias=True, mode="json") for s in p.shapes]
        )
        for p in body.predictions
    ]
    stored = await predictions.attach_predictions(labeling, principal, items)
    return PredictionList(items=[PredictionOut.model_validate(p) for p in stored])


@router.get(
    "/v1/assets/{asset_id}/predictions",
    summary="An asset's predictions, one per model",
    responses=error_responses(401, 403, 404, 422),
)
async def asset_predictions(
    asset_id: uuid.UUID, principal: Viewer, labeling: LabelingDep
) -> PredictionList:
    stored = await predictions.predictions_of(labeling, principal, asset_id)
    return PredictionList(items=[PredictionOut.model_validate(p) for p in stored])
