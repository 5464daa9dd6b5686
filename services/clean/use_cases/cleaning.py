"""asset.ingested: check new assets, find what they duplicate, judge them, announce verdicts.

A run of events (at most ``batch_size``, see the routes table) is measured first, outside
any transaction (up to ``analysis_threads`` files at a time), then judged in one unit of
work that holds the locks of its datasets, so its statements are paid once per run, not
per asset. Events already applied (a redelivery) are skipped before any file is read.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager

from opentelemetry import propagate, trace
from opentelemetry.trace import Span
from sqlalchemy.ext.asyncio import AsyncSession

from services.clean import domain
from services.clean import repository as repo
from services.clean.context import Clean
from services.clean.domain import ReportRow
from services.clean.near_index import DatasetHashes, Shortlist
from services.clean.policy import PolicyRules
from services.clean.use_cases.datasets import remember_slugs
from services.clean.use_cases.measuring import Measured, measure
from services.clean.use_cases.policy import stored_rules
from services.clean.video_index import DatasetVideos
from shared.events import AssetIngestedV1, Envelope
from shared.routing import Event
from shared.uow import UnitOfWork

tracer = trace.get_tracer("conveyor.clean")

# Each dataset's policy and its version.
Rules = dict[uuid.UUID, tuple[PolicyRules, int]]


async def clean_assets(clean: Clean, events: Sequence[Event[AssetIngestedV1]]) -> None:
    """Check, judge and announce a run of new assets."""
    done = await clean.units.applied([e.envelope for e in events])
    todo = [e for e in events if e.id not in done]
    if not todo:
        return
    async with clean.units.begin() as uow:
        recorded = await remember_slugs(clean, uow.session, (e.payload for e in todo))
        datasets = {e.payload.dataset_id for e in todo}
        rules = {ident: await stored_rules(uow.session, ident) for ident in datasets}
    clean.known_datasets |= recorded
    gate = asyncio.Semaphore(clean.settings.analysis_threads)

    async def measured(event: Event[AssetIngestedV1]) -> Measured:
        async with gate:
            with asset_span("clean measure", event.envelope, event.payload):
                policy = rules[event.payload.dataset_id][0]
                return await measure(clean, event.envelope, event.payload, policy)

    outcomes = await asyncio.gather(*(measured(e) for e in todo), return_exceptions=True)
    # Judge what could be read; a failure (e.g. a missing object) is raised afterwards, so
    # the consumer retries that event alone while the others are already done.
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    await _judge(clean, [o for o in outcomes if isinstance(o, Measured)], rules)
    if failures:
        raise failures[0]


def asset_span(
    name: str, envelope: Envelope, asset: AssetIngestedV1
) -> AbstractContextManager[Span]:
    """A span for one asset's step, in the trace the asset's event carries."""
    context = propagate.extract({"traceparent": envelope.traceparent or ""})
    attributes = {"conveyor.asset_id": str(asset.asset_id), "messaging.message.id": envelope.id}
    return tracer.start_as_current_span(name, context=context, attributes=attributes)


async def _judge(clean: Clean, measured: list[Measured], rules: Rules) -> None:
    """Judge measured assets in one unit of work: reports, verdict and frame events."""
    if not measured:
        return
    datasets = sorted({m.asset.dataset_id for m in measured})
    try:
        async with clean.units.begin() as uow:
            claimed = await uow.claim_all([m.envelope for m in measured])
            measured = [m for m in measured if m.envelope.id in claimed]
            for ident in datasets:  # one order everywhere: no deadlock between processes
                await repo.lock_dataset(uow.session, ident)
            arrivals = await repo.next_arrivals(uow.session, len(measured))
            originals = {
                ident: await repo.first_with_pixels_among(
                    uow.session,
                    ident,
                    [
                        m.findings.pixels
                        for m in measured
                        if m.asset.dataset_id == ident and m.findings.pixels
                    ],
                )
                for ident in datasets
            }
            copies = {ident: await _hashes(clean, uow.session, ident) for ident in datasets}
            known, shortlists = await _candidate_features(uow.session, measured, copies)
            videos = {ident: await _videos(clean, uow.session, ident) for ident in datasets}
            reports = []
            for one, arrival in zip(measured, arrivals, strict=True):
                ident = one.asset.dataset_id
                # each asset's verdict continues the trace of its upload
                with asset_span("clean judge", one.envelope, one.asset):
                    row = _judged(
                        uow,
                        one,
                        arrival,
                        originals[ident],
                        copies[ident],
                        rules[ident],
                        known,
                        videos[ident],
                        shortlists.get(one.asset.asset_id),
                    )
                reports.append(row)
            await repo.insert_reports(uow.session, reports)
            await repo.insert_features(
                uow.session,
                [
                    (m.asset.asset_id, m.asset.dataset_id, m.findings.features)
                    for m in measured
                    if m.findings.features is not None
                ],
            )
            await repo.insert_video_signatures(
                uow.session,
                [
                    (m.asset.asset_id, m.asset.dataset_id, arrival, m.findings.video)
                    for m, arrival in zip(measured, arrivals, strict=True)
                    if m.findings.video is not None
                ],
            )
    except BaseException:
        # The copies may hold hashes that were never committed: read them afresh next time.
        for ident in datasets:
            clean.near_index.forget(ident)
            clean.video_index.forget(ident)
        raise
    clean.near_index.trim()
    clean.video_index.trim()


def _judged(
    uow: UnitOfWork,
    measured: Measured,
    arrival: int,
    originals: dict[str, uuid.UUID],
    copy: DatasetHashes,
    rules: tuple[PolicyRules, int],
    known: dict[uuid.UUID, bytes],
    videos: DatasetVideos,
    shortlist: Shortlist | None = None,
) -> ReportRow:
    """One asset's report row; its verdict event and, if accepted, its frames' events."""
    asset, findings, (policy, version) = measured.asset, measured.findings, rules
    duplicate = domain.find_duplicate(
        asset.asset_id, arrival, findings, originals, copy, policy, known, shortlist
    )
    video_duplicate = domain.find_video_duplicate(asset.asset_id, arrival, findings, videos)
    duplicate = duplicate or video_duplicate
    verdict = domain.verdict(findings, duplicate, policy)
    subject = str(asset.asset_id)
    announced = domain.verdict_event(
        asset.asset_id,
        asset.dataset_id,
        asset.dataset_slug,
        asset.media_type,
        findings.metrics,
        verdict,
        version,
        duplicate,
    )
    uow.emit(announced, subject=subject, actor="clean")
    if not verdict.rejected:
        for frame in measured.frames:
            uow.emit(
                frame.payload,
                subject=subject,
                actor="clean",
                event_id=frame.event_id,
                traceparent=frame.traceparent,
            )
    row = domain.report_row(
        asset.asset_id,
        asset.dataset_id,
        asset.media_type,
        findings,
        arrival,
        duplicate,
        verdict,
        version,
    )
    row["ingested"] = asset.model_dump(mode="json")  # a re-analysis reads the file from here
    return row


async def _candidate_features(
    session: AsyncSession, measured: list[Measured], copies: dict[uuid.UUID, DatasetHashes]
) -> tuple[dict[uuid.UUID, bytes], dict[uuid.UUID, Shortlist]]:
    """Stored features of every earlier asset the run's images may be verified against, and
    the run's own (an image may duplicate one judged before it in the same run); and each
    image's candidates (stage 1), which its judgement completes instead of finding again."""
    shortlists: dict[uuid.UUID, Shortlist] = {}
    for one in measured:
        findings = one.findings
        if findings.phash is not None and findings.features is not None:
            copy = copies[one.asset.dataset_id]
            shortlists[one.asset.asset_id] = copy.shortlist(findings.phash, findings.crops)
    wanted = {p.asset_id for found in shortlists.values() for p in found.proposed}
    known = await repo.features_of(session, sorted(wanted))
    for one in measured:
        if one.findings.features is not None:
            known[one.asset.asset_id] = one.findings.features
    return known, shortlists


async def _videos(clean: Clean, session: AsyncSession, ident: uuid.UUID) -> DatasetVideos:
    """The dataset's in-memory video fingerprints, brought up to date (the lock is held)."""
    videos = clean.video_index.dataset(ident)
    for stored in await repo.video_signatures_since(session, ident, videos.newest_arrival):
        videos.add(stored)
    return videos


async def _hashes(clean: Clean, session: AsyncSession, ident: uuid.UUID) -> DatasetHashes:
    """The dataset's in-memory hashes, brought up to date (the dataset lock is held)."""
    copy = clean.near_index.dataset(ident)
    copy.extend(await repo.hashes_since(session, ident, copy.newest_arrival))
    return copy
