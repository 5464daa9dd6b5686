"""Re-analysis: measure a dataset's stored files again with today's checks, in the background.

A policy change re-judges stored metrics; a change of what is measured (a new metric, hash or
video signature) needs the files read again. A job walks the dataset's reports by arrival up
to the newest one at its start (later assets are measured by the live consumer anyway), a page
at a time: the page's files are measured outside any transaction by the consumer's own code
(:func:`measuring.measure`, ``reanalysis_concurrency`` files at a time), then one unit of work
replaces the stored measurements, re-judges them as a policy change does (when ``rejudge``),
and moves the job's checkpoint. A page is all or nothing, so a job left running by a process
that died resumes after its last committed page and measures no asset twice into the store.

The duplicate decision (``duplicate_of``) is kept: the first copy of a pair stays the original.
New hashes are stored, so assets that arrive later are compared with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.clean import domain
from services.clean import reanalysis_repository as jobs
from services.clean import repository as repo
from services.clean.context import SOURCE, Clean
from services.clean.models import QualityReport, Reanalysis
from services.clean.policy import PolicyRules, Verdict
from services.clean.schemas import (
    ReanalysisFailure,
    ReanalysisOut,
    ReanalysisPage,
    ReanalysisState,
    SourcesStored,
)
from services.clean.use_cases.datasets import dataset_of
from services.clean.use_cases.measuring import Measured, MissingObject, measure
from services.clean.use_cases.policy import apply_verdict, stored_rules
from shared.auth import Principal
from shared.errors import ApiError
from shared.events import ASSET_INGESTED, AssetIngestedV1, Envelope
from shared.paging import Cursor
from shared.uow import UnitOfWork

log = logging.getLogger(__name__)

FINISHED = ("succeeded", "failed", "cancelled")
FAILURES_KEPT = 100  # failures listed on a job; the count goes on


# --- pure parts ------------------------------------------------------------------------------


class JobCounts(Protocol):
    """What progress figures are computed from."""

    @property
    def state(self) -> str: ...
    @property
    def total(self) -> int: ...
    @property
    def done(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def resumed_at(self) -> datetime | None: ...
    @property
    def processed_at_resume(self) -> int: ...
    @property
    def finished_at(self) -> datetime | None: ...


@dataclass(frozen=True)
class Progress:
    """How far a job is and how fast it goes."""

    remaining: int
    rate_per_second: float | None
    eta_seconds: float | None


def progress(job: JobCounts, now: datetime) -> Progress:
    """Remaining assets, rate since the job last (re)started in a process, and time left.

    The rate counts only this stretch of work, so a job resumed after a restart is not made
    to look slow by the time it waited.
    """
    remaining = max(job.total - job.done - job.failed, 0)
    if job.resumed_at is None:
        return Progress(remaining, None, None)
    until = job.finished_at or now
    seconds = (until - job.resumed_at).total_seconds()
    handled = job.done + job.failed - job.processed_at_resume
    if seconds <= 0 or handled <= 0:
        return Progress(remaining, None, None)
    rate = handled / seconds
    eta = remaining / rate if job.state == "running" else None
    return Progress(remaining, rate, eta)


def kept_failures(
    stored: Sequence[dict[str, Any]], new: Sequence[tuple[uuid.UUID, str]]
) -> list[dict[str, Any]]:
    """The job's listed failures with the page's added, up to :data:`FAILURES_KEPT`."""
    room = max(FAILURES_KEPT - len(stored), 0)
    added = [{"asset_id": str(asset), "reason": reason} for asset, reason in new[:room]]
    return [*stored, *added]


def replace_measurements(report: QualityReport, findings: domain.Findings) -> bool:
    """Put fresh findings on a stored report (verdict untouched); True if its perceptual
    hashes changed, so in-memory copies of the dataset's hashes must be read again."""
    phash = None if findings.phash is None else repo.to_signed(findings.phash)
    crops = None if findings.phash is None else repo.pack_crops(findings.crops)
    hashes_changed = (report.phash, report.crop_hashes) != (phash, crops)
    report.metrics = findings.metrics
    report.structural = domain.stored_checks(findings.structural)
    report.pixel_sha256 = findings.pixels
    report.phash, report.crop_hashes = phash, crops
    return hashes_changed


def failure_reason(exc: BaseException) -> str:
    """Why an asset could not be re-measured, as listed on the job."""
    if isinstance(exc, MissingObject):
        return f"missing_object: {exc}"
    return f"{type(exc).__name__}: {exc}"


# --- the API's use cases -----------------------------------------------------------------------


def job_out(job: Reanalysis, now: datetime | None = None) -> ReanalysisOut:
    """The API form of a job with its progress figures."""
    figures = progress(job, now or datetime.now(UTC))
    return ReanalysisOut(
        id=job.id,
        dataset_slug=job.dataset_slug,
        state=cast(ReanalysisState, job.state),
        rejudge=job.rejudge,
        requested_by=job.requested_by,
        total=job.total,
        done=job.done,
        failed=job.failed,
        changed=job.changed,
        remaining=figures.remaining,
        rate_per_second=figures.rate_per_second,
        eta_seconds=figures.eta_seconds,
        failures=[ReanalysisFailure.model_validate(f) for f in job.failures],
        error=job.error,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        updated_at=job.updated_at,
    )


def _running_conflict(running: Reanalysis) -> ApiError:
    return ApiError(
        409,
        "reanalysis_running",
        f"dataset {running.dataset_slug!r} already has re-analysis {running.id} ({running.state})",
        {"reanalysis_id": str(running.id)},
    )


async def start(
    clean: Clean, runner: ReanalysisRunner, principal: Principal, slug: str, rejudge: bool
) -> ReanalysisOut:
    """Queue a re-analysis of every report the dataset has now; 409 if one is under way."""
    try:
        async with clean.units.begin() as uow:
            ident = await dataset_of(uow.session, slug, principal)
            running = await jobs.active_job(uow.session, ident)
            if running is not None:
                raise _running_conflict(running)
            total, newest = await jobs.report_span(uow.session, ident)
            job = Reanalysis(
                id=uuid.uuid4(),
                dataset_id=ident,
                dataset_slug=slug,
                state="queued",
                rejudge=rejudge,
                requested_by=principal.name,
                total=total,
                done=0,
                failed=0,
                changed=0,
                last_arrival=0,
                until_arrival=newest,
                failures=[],
                processed_at_resume=0,
            )
            uow.session.add(job)
            await uow.session.flush()
            await uow.session.refresh(job)
            out = job_out(job)
    except IntegrityError:
        # another request started one between our check and our insert
        async with clean.units.read() as session:
            running = await jobs.active_job(session, ident)
        if running is None:
            raise
        raise _running_conflict(running) from None
    log.info("re-analysis %s of %s queued by %s", out.id, slug, principal.name)
    runner.wake()
    return out


async def _visible_job(clean: Clean, principal: Principal, job_id: uuid.UUID) -> Reanalysis:
    async with clean.units.read() as session:
        job = await jobs.job(session, job_id)
    if job is None or not principal.sees(job.dataset_id):
        raise ApiError(404, "reanalysis_not_found", f"no re-analysis {job_id}")
    return job


async def get(clean: Clean, principal: Principal, job_id: uuid.UUID) -> ReanalysisOut:
    """A job and its progress (as missing for a dataset the key may not touch)."""
    return job_out(await _visible_job(clean, principal, job_id))


async def list_jobs(
    clean: Clean, principal: Principal, slug: str, limit: int, cursor: str | None
) -> ReanalysisPage:
    """A dataset's jobs, newest first."""
    after = Cursor.decode(cursor) if cursor else None
    async with clean.units.read() as session:
        ident = await dataset_of(session, slug, principal)
        rows = await jobs.jobs_of(session, ident, limit + 1, after)
    now = datetime.now(UTC)
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = Cursor(page[-1].created_at, page[-1].id).encode()
    return ReanalysisPage(items=[job_out(j, now) for j in page], next_cursor=next_cursor)


async def cancel(clean: Clean, principal: Principal, job_id: uuid.UUID) -> ReanalysisOut:
    """Stop a queued or running job; the pages it committed stay. 409 once it has finished."""
    await _visible_job(clean, principal, job_id)
    async with clean.units.begin() as uow:
        job = await jobs.job(uow.session, job_id, lock=True)
        assert job is not None  # jobs are never deleted
        if job.state in FINISHED:
            raise ApiError(
                409, "reanalysis_finished", f"re-analysis {job_id} has already {job.state}"
            )
        now = datetime.now(UTC)
        job.state, job.finished_at, job.updated_at = "cancelled", now, now
        out = job_out(job, now)
    log.info("re-analysis %s cancelled by %s", job_id, principal.name)
    return out


async def store_sources(
    clean: Clean, principal: Principal, slug: str, assets: Sequence[AssetIngestedV1]
) -> SourcesStored:
    """Give reports made before sources were stored the asset.ingested payload they were made
    from (the audit trail holds it), so a re-analysis can read their files; a report that has
    one keeps it, and a payload of another dataset's asset is counted as unknown."""
    async with clean.units.begin() as uow:
        ident = await dataset_of(uow.session, slug, principal)
        sources = {
            asset.asset_id: asset.model_dump(mode="json")
            for asset in assets
            if asset.dataset_id == ident
        }
        stored, kept = await jobs.store_sources(uow.session, ident, sources)
    log.info("stored sources of %s reports of %s (%s kept)", stored, slug, kept)
    unknown = len({a.asset_id for a in assets}) - stored - kept
    return SourcesStored(received=len(assets), stored=stored, kept=kept, unknown=unknown)


# --- the background runner ---------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A report to re-measure: its asset, arrival and the event it was made from."""

    asset_id: uuid.UUID
    arrival: int
    ingested: dict[str, Any] | None


@dataclass(frozen=True)
class Outcome:
    """One asset of a page: fresh findings, or why there are none."""

    asset_id: uuid.UUID
    measured: Measured | None
    reason: str | None


class ReanalysisRunner:
    """Runs queued jobs, and jobs left running by a process that died, one at a time.

    A job is held by a Postgres advisory lock on a connection of its own, so several copies
    of the service never run one job twice, and a crashed copy's job is free at once.
    """

    def __init__(self, clean: Clean, engine: AsyncEngine) -> None:
        self.clean = clean
        self.engine = engine
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for jobs now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Forever: run the oldest job no other process holds, else wait."""
        while True:
            self._wake.clear()
            ran = await self._run_one()
            if not ran:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._wake.wait(), self.clean.settings.reanalysis_poll_seconds
                    )

    async def _run_one(self) -> bool:
        async with self.clean.units.read() as session:
            pending = await jobs.pending_jobs(session)
        if not pending:
            return False
        async with self.engine.connect() as raw:
            holder = await raw.execution_options(isolation_level="AUTOCOMMIT")
            for job_id in pending:
                if not await jobs.try_lock_job(holder, job_id):
                    continue
                try:
                    await self._run_job(job_id)
                finally:
                    await jobs.unlock_job(holder, job_id)
                return True
        return False

    async def _run_job(self, job_id: uuid.UUID) -> None:
        try:
            if not await self._resume(job_id):
                return
            while await self._run_page(job_id):
                pass
        except Exception as exc:
            log.exception("re-analysis %s failed", job_id)
            await self._finish(job_id, "failed", failure_reason(exc))

    async def _resume(self, job_id: uuid.UUID) -> bool:
        """Mark the job running from now (first start or resume); False if it is finished."""
        async with self.clean.units.begin() as uow:
            job = await jobs.job(uow.session, job_id, lock=True)
            if job is None or job.state in FINISHED:
                return False
            now = datetime.now(UTC)
            if job.state == "queued":
                job.state, job.started_at = "running", now
            else:
                log.info("re-analysis %s resumes after arrival %s", job_id, job.last_arrival)
            job.resumed_at, job.processed_at_resume = now, job.done + job.failed
            job.updated_at = now
        return True

    async def _run_page(self, job_id: uuid.UUID) -> bool:
        """Measure and store the next page; False when the job has ended."""
        settings = self.clean.settings
        async with self.clean.units.read() as session:
            job = await jobs.job(session, job_id)
            if job is None or job.state != "running":
                return False
            dataset, after, until = job.dataset_id, job.last_arrival, job.until_arrival
            rows = await jobs.sources_after(
                session, dataset, after, until, settings.reanalysis_page
            )
            rules, _ = await stored_rules(session, dataset)
        if not rows:
            await self._finish(job_id, "succeeded", None)
            return False
        sources = [Source(r.asset_id, r.arrival, r.ingested) for r in rows]
        gate = asyncio.Semaphore(settings.reanalysis_concurrency)

        async def measured(source: Source) -> Outcome:
            async with gate:
                return await self._measure(source, rules)

        outcomes = await asyncio.gather(*(measured(s) for s in sources))
        return await self._store_page(job_id, outcomes, sources[-1].arrival)

    async def _measure(self, source: Source, rules: PolicyRules) -> Outcome:
        """One asset measured by the consumer's code; a failure becomes a reason."""
        if source.ingested is None:
            reason = (
                "no_stored_source: the report predates stored sources"
                " (conveyor quality backfill-sources gives it one)"
            )
            return Outcome(source.asset_id, None, reason)
        try:
            asset = AssetIngestedV1.model_validate(source.ingested)
        except ValidationError as exc:
            return Outcome(source.asset_id, None, f"bad_stored_source: {exc.error_count()} errors")
        envelope = Envelope(
            id=f"reanalysis:{source.asset_id}",
            source=SOURCE,
            type=ASSET_INGESTED.name,
            time=datetime.now(UTC),
            subject=str(source.asset_id),
            data=source.ingested,
        )
        try:
            return Outcome(source.asset_id, await measure(self.clean, envelope, asset, rules), None)
        except Exception as exc:  # a missing or unreadable file fails the asset, not the job
            log.warning("re-analysis of %s failed: %s", source.asset_id, exc)
            return Outcome(source.asset_id, None, failure_reason(exc))

    async def _store_page(self, job_id: uuid.UUID, outcomes: Sequence[Outcome], last: int) -> bool:
        """Replace the page's measurements, re-judge, checkpoint: one transaction."""
        hashes_changed = videos = False
        async with self.clean.units.begin() as uow:
            session = uow.session
            job = await jobs.job(session, job_id, lock=True)
            if job is None or job.state != "running":
                return False  # cancelled while the page was measured: nothing of it is kept
            await repo.lock_dataset(session, job.dataset_id)
            rules, version = await stored_rules(session, job.dataset_id)
            reports = await jobs.reports_by_id(session, [o.asset_id for o in outcomes])
            failures: list[tuple[uuid.UUID, str]] = []
            done = changed = 0
            now = datetime.now(UTC)
            for outcome in outcomes:
                report = reports.get(outcome.asset_id)
                if outcome.measured is None or report is None:
                    failures.append((outcome.asset_id, outcome.reason or "report_gone"))
                    continue
                hashes_changed |= replace_measurements(report, outcome.measured.findings)
                await jobs.replace_kept_beside(session, report, outcome.measured.findings)
                videos |= report.media_type.startswith("video/")
                report.updated_at = now
                done += 1
                if job.rejudge:
                    verdict = domain.changed_verdict(report, rules)
                    changed += _rejudge(uow, report, outcome.measured, verdict, job, version)
            job.done += done
            job.failed += len(failures)
            job.changed += changed
            job.failures = kept_failures(job.failures, failures)
            job.last_arrival, job.updated_at = last, now
        # in-memory copies read only newer arrivals: make them read the replaced rows again
        if hashes_changed:
            self.clean.near_index.forget(job.dataset_id)
        if videos:
            self.clean.video_index.forget(job.dataset_id)
        return True

    async def _finish(self, job_id: uuid.UUID, state: str, error: str | None) -> None:
        async with self.clean.units.begin() as uow:
            job = await jobs.job(uow.session, job_id, lock=True)
            if job is None or job.state != "running":
                return
            now = datetime.now(UTC)
            job.state, job.error, job.finished_at, job.updated_at = state, error, now, now
        log.info("re-analysis %s %s", job_id, state)


def _rejudge(
    uow: UnitOfWork,
    report: QualityReport,
    measured: Measured,
    verdict: Verdict | None,
    job: Reanalysis,
    version: int,
) -> int:
    """Store the verdict on fresh measurements as a policy change stores one on stored
    measurements; 1 if it changed (and is announced). A video accepted only now announces
    its sampled frames, as the consumer would have (their event ids are deterministic)."""
    if verdict is None:
        report.policy_version = version
        return 0
    apply_verdict(uow, report, verdict, job.dataset_slug, version)
    if not verdict.rejected:
        for frame in measured.frames:
            uow.emit(
                frame.payload,
                subject=str(report.asset_id),
                actor="clean",
                event_id=frame.event_id,
                traceparent=frame.traceparent,
            )
    return 1
