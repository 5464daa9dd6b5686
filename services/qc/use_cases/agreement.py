"""A job's agreement on image-level classes: Krippendorff's alpha, Fleiss' and Cohen's kappa.

Per-asset consensus compares shapes; these figures say how far a job's annotators agree on
what an image *is*, corrected for chance (two annotators who always answer the dominant class
agree often and mean little). Computed on request from the answers that count now: a job's
answers are read once per request.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

from services.qc.context import Qc
from services.qc.domain.agreement import job_agreement
from services.qc.domain.consensus import rater_names
from services.qc.repository import annotations as repo
from services.qc.repository import mirror as mirror_repo
from services.qc.use_cases.policies import check_visible
from shared.auth import Principal

NO_CLASS = "(none)"
"""The rating of an answer that names no image-level class."""


class PairKappa(BaseModel):
    """Cohen's kappa of two annotators over the images both rated."""

    first: str
    second: str
    kappa: float | None
    items: int


class JobAgreementOut(BaseModel):
    """A job's chance-corrected agreement on image-level classes, each figure with the number
    of images it rests on (null when it is undefined, e.g. everyone always gave one class)."""

    job_id: uuid.UUID
    classified_images: int = Field(description="images with an answer naming an image class")
    krippendorff_alpha: float | None
    alpha_items: int = Field(description="images rated by at least two annotators")
    fleiss_kappa: float | None
    fleiss_items: int
    fleiss_raters: int
    cohen_kappa: list[PairKappa]


def image_class(shapes: list[dict[str, object]]) -> str:
    """An answer's image-level rating: its classification classes (sorted, joined), if any."""
    names = sorted({str(s.get("class")) for s in shapes if s.get("type") == "classification"})
    return "+".join(names) if names else NO_CLASS


async def job_agreement_report(qc: Qc, principal: Principal, job_id: uuid.UUID) -> JobAgreementOut:
    """The job's classification agreement (404 for a job the caller may not see)."""
    async with qc.units.read() as session:
        job = await mirror_repo.job_by_id(session, job_id)
        check_visible(principal, job_id, job)
        answers = await repo.job_classifications(session, job_id)
    by_asset: dict[str, list[tuple[str, int, list[dict[str, object]]]]] = {}
    for asset, annotator, replica, shapes in answers:
        by_asset.setdefault(str(asset), []).append((annotator, replica, shapes))
    ratings = {
        asset: dict(
            zip(
                rater_names([(name, replica) for name, replica, _ in rated]),
                [image_class(shapes) for _, _, shapes in rated],
                strict=True,
            )
        )
        for asset, rated in by_asset.items()
    }
    classified = {a for a, by in ratings.items() if any(v != NO_CLASS for v in by.values())}
    kept = {a: by for a, by in ratings.items() if a in classified}
    figures = job_agreement(kept)
    return JobAgreementOut(
        job_id=job_id,
        classified_images=len(classified),
        krippendorff_alpha=figures.alpha,
        alpha_items=figures.alpha_items,
        fleiss_kappa=figures.fleiss,
        fleiss_items=figures.fleiss_items,
        fleiss_raters=figures.fleiss_raters,
        cohen_kappa=[
            PairKappa(first=p.a, second=p.b, kappa=p.kappa, items=p.items)
            for p in figures.rater_pairs
        ],
    )
