"""A job's QC policy: what it set (``jobs.policy``) over the service's defaults.

``jobs.policy`` holds only what the job's admin set (:data:`POLICY_FIELDS`); judging's
:func:`~services.qc.use_cases.judging.effective_policy` fills the rest from
:class:`~services.qc.settings.QcSettings`, so a changed default reaches every job that did not
choose its own value.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.qc.context import Qc
from services.qc.models import QcJob
from services.qc.repository import mirror as mirror_repo
from services.qc.repository import review_queries as repo
from services.qc.use_cases.judging import JudgingPolicy, effective_policy
from shared.auth import Principal
from shared.errors import ApiError

ClassPair = tuple[str, str]

# What a job may set, as stored in ``jobs.policy`` (and read by judging's ``effective_policy``).
POLICY_FIELDS = (
    "iou_threshold",
    "min_agreement",
    "consensus_timeout_seconds",
    "forbidden_together",
)


def normalised_pairs(pairs: Any) -> tuple[ClassPair, ...]:
    """Each pair sorted, duplicates dropped, in order: the same set of pairs reads the same."""
    found = {(min(a, b), max(a, b)) for a, b in (tuple(p) for p in pairs)}
    return tuple(sorted(found))


@dataclass(frozen=True)
class PolicyView:
    """A job's effective policy and which of its values the job set itself."""

    job_id: uuid.UUID
    policy: JudgingPolicy
    set_by_job: list[str]


def _view(qc: Qc, job: QcJob) -> PolicyView:
    stored = job.policy or {}
    return PolicyView(
        job.id,
        effective_policy(job, qc.settings),
        [name for name in POLICY_FIELDS if name in stored],
    )


async def job_policy(qc: Qc, principal: Principal, job_id: uuid.UUID) -> PolicyView:
    """The policy of a job the caller may see; 404 otherwise."""
    async with qc.units.read() as session:
        job = await mirror_repo.job_by_id(session, job_id)
        check_visible(principal, job_id, job)
        assert job is not None
        return _view(qc, job)


async def set_job_policy(
    qc: Qc, principal: Principal, job_id: uuid.UUID, chosen: Mapping[str, Any]
) -> PolicyView:
    """Replace what the job set with ``chosen`` (field -> value; a field left out goes back to
    the service's default). Class names must be the job's ontology's (422 otherwise)."""
    unknown = set(chosen) - set(POLICY_FIELDS)
    if unknown:  # the API's model refuses these; a caller in process must not store them
        raise ValueError(f"not policy fields: {sorted(unknown)}")
    async with qc.units.begin() as uow:
        job = await mirror_repo.job_by_id(uow.session, job_id)
        check_visible(principal, job_id, job)
        assert job is not None
        stored = dict(chosen)
        if "forbidden_together" in stored:
            pairs = normalised_pairs(stored["forbidden_together"])
            await _check_classes(uow.session, job, pairs)
            stored["forbidden_together"] = [list(p) for p in pairs]
        job.policy = stored
        effective_policy(job, qc.settings)  # raises if judging could not read it
        await uow.session.flush()
        return _view(qc, job)


def check_visible(principal: Principal, job_id: uuid.UUID, job: QcJob | None) -> None:
    if job is None or not principal.sees(job.dataset_id):
        raise ApiError(404, "job_not_found", f"QC knows no job {job_id}")


async def _check_classes(session: AsyncSession, job: QcJob, pairs: tuple[ClassPair, ...]) -> None:
    """A pair of one class twice, or a class the job's ontology lacks, is refused (422)."""
    same = [list(p) for p in pairs if p[0] == p[1]]
    if same:
        raise ApiError(
            422,
            "invalid_policy",
            "a forbidden pair must name two different classes",
            {"pairs": same},
        )
    classes = await repo.ontology_classes(session, job.ontology_id, job.ontology_version)
    if classes is None:  # the ontology version has not reached QC yet: nothing to check against
        return
    unknown = sorted({name for pair in pairs for name in pair} - set(classes))
    if unknown:
        raise ApiError(
            422,
            "unknown_class",
            f"the job's ontology has no class {unknown[0]!r}",
            {"unknown": unknown, "classes": classes},
        )
