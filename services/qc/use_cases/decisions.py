"""An asset's labels in a job decided: accepted (they become the dataset's), rejected, or sent
back for rework. The automatic path (judging) and reviewers (the review API) both end here, so
an acceptance is recorded and announced one way."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from services.qc.models import AcceptedLabels, AssetReview, QcJob
from services.qc.use_cases.scorecards import count_decision
from shared.events import (
    AnnotationAcceptedV1,
    AnnotationRejectedV1,
    AnnotationReworkRequestedV1,
    Payload,
)
from shared.uow import UnitOfWork


def _decide(review: AssetReview, state: str, decided_by: str, comment: str | None) -> datetime:
    """Record a decision on the review row; when it was made."""
    now = datetime.now(UTC)
    review.state = state
    review.decided_by = decided_by
    review.comment = comment
    review.updated_at = now
    return now


def _announce(uow: UnitOfWork, review: AssetReview, payload: Payload, decided_by: str) -> None:
    """Stage a decision's event: in the asset's timeline, in the asset's order."""
    key = str(review.asset_id)
    uow.emit(payload, subject=key, actor=decided_by, key=key)


async def accept(
    uow: UnitOfWork,
    review: AssetReview,
    job: QcJob,
    shapes: list[dict[str, Any]],
    annotation_ids: Sequence[uuid.UUID],
    *,
    decided_by: str,
    automatic: bool,
    comment: str | None = None,
) -> None:
    """Accept: the review closes, the asset's accepted labels become ``shapes``."""
    now = _decide(review, "accepted", decided_by, comment)
    review.label_set = shapes
    await uow.session.merge(
        AcceptedLabels(
            asset_id=review.asset_id,
            dataset_id=review.dataset_id,
            job_id=job.id,
            ontology_id=job.ontology_id,
            ontology_version=job.ontology_version,
            shapes=shapes,
            annotation_ids=list(annotation_ids),
            accepted_by=decided_by,
            accepted_at=now,
        )
    )
    _announce(
        uow,
        review,
        AnnotationAcceptedV1(
            job_id=job.id,
            asset_id=review.asset_id,
            dataset_id=review.dataset_id,
            annotation_ids=list(annotation_ids),
            shapes=shapes,
            decided_by=decided_by,
            automatic=automatic,
            comment=comment,
            agreement=review.agreement,
        ),
        decided_by,
    )
    await count_decision(uow, job.id, "accepted", now, annotation_ids=annotation_ids)


async def reject(
    uow: UnitOfWork,
    review: AssetReview,
    annotation_ids: Sequence[uuid.UUID],
    *,
    decided_by: str,
    comment: str,
) -> None:
    """Reject: the review closes; the answers never become the dataset's labels."""
    now = _decide(review, "rejected", decided_by, comment)
    _announce(
        uow,
        review,
        AnnotationRejectedV1(
            job_id=review.job_id,
            asset_id=review.asset_id,
            dataset_id=review.dataset_id,
            annotation_ids=list(annotation_ids),
            decided_by=decided_by,
            comment=comment,
        ),
        decided_by,
    )
    await count_decision(uow, review.job_id, "rejected", now, annotation_ids=annotation_ids)


async def send_back(
    uow: UnitOfWork,
    review: AssetReview,
    task_ids: Sequence[uuid.UUID],
    *,
    decided_by: str,
    comment: str,
    vendor_id: uuid.UUID | None = None,
) -> None:
    """Rework: labeling-dispatch sends the tasks back; their new answers come through QC again."""
    now = _decide(review, "rework", decided_by, comment)
    review.round += 1
    _announce(
        uow,
        review,
        AnnotationReworkRequestedV1(
            job_id=review.job_id,
            asset_id=review.asset_id,
            dataset_id=review.dataset_id,
            task_ids=list(task_ids),
            comment=comment,
            requested_by=decided_by,
            vendor_id=vendor_id,
            round=review.round,
        ),
        decided_by,
    )
    await count_decision(uow, review.job_id, "rework", now, task_ids=task_ids)
