"""The consensus timeout: an asset whose replicas do not all answer is not left waiting forever.

Every ``consensus_sweep_seconds`` the waiting assets of jobs with overlap >= 2 whose first
answer is older than the job's consensus timeout are evaluated on the answers that are in
(``timed_out`` in the consensus event); with fewer than two there is nothing to compare and a
person decides (reason ``consensus_timeout``). Each asset is its own unit of work and is
checked again under its lock, so several copies of the service may sweep at once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from services.qc.context import Qc
from services.qc.repository import mirror as mirror_repo
from services.qc.repository import reviews as reviews_repo
from services.qc.use_cases.judging import effective_policy, evaluate

log = logging.getLogger(__name__)

# Assets evaluated per sweep at most; the rest wait for the next one.
SWEEP_LIMIT = 500


async def sweep_consensus_timeouts(qc: Qc, now: datetime | None = None) -> int:
    """Evaluate the waiting assets whose consensus timeout has passed; how many were."""
    now = now or datetime.now(UTC)
    async with qc.units.read() as session:
        due = await reviews_repo.overdue_waiting(
            session, now, qc.settings.default_consensus_timeout_seconds, SWEEP_LIMIT
        )
    evaluated = 0
    for job_id, asset_id in due:
        async with qc.units.begin() as uow:
            review = await reviews_repo.locked_review(uow.session, job_id, asset_id)
            job = await mirror_repo.job_by_id(uow.session, job_id)
            if review is None or job is None or review.state != "waiting":
                continue  # decided meanwhile
            policy = effective_policy(job, qc.settings)
            timeout = timedelta(seconds=policy.consensus_timeout_seconds)
            if review.first_answer_at is None or review.first_answer_at + timeout > now:
                continue  # a new round started meanwhile
            await evaluate(uow, job, review, policy, timed_out=True)
            evaluated += 1
    return evaluated


async def run_consensus_sweep(qc: Qc) -> None:
    """Sweep until cancelled; a failed sweep is logged and the next one tries again."""
    while True:
        try:
            swept = await sweep_consensus_timeouts(qc)
            if swept:
                log.info("consensus timeout: %d waiting asset(s) evaluated", swept)
        except Exception:
            log.exception("consensus timeout sweep failed")
        await asyncio.sleep(qc.settings.consensus_sweep_seconds)
