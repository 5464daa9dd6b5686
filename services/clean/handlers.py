"""Clean's use cases. Each write commits in exactly one place: the ``session.begin()`` here."""

from __future__ import annotations

import asyncio
import hashlib
import io
import itertools
import logging
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from minio.error import S3Error
from opentelemetry import propagate, trace
from opentelemetry.trace import Span
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.clean import repository as repo
from services.clean.checks import CheckResult, analyze_image
from services.clean.checks.video import SampledFrame, VideoReport, analyze_video, sample_frames
from services.clean.models import Policy, QualityReport, inbox, outbox
from services.clean.near_index import DatasetHashes, HashRows, NearIndex
from services.clean.policy import (
    Duplicate,
    PolicyRules,
    Verdict,
    judge,
    near_duplicate_comparable,
)
from services.clean.schemas import (
    DuplicateGroup,
    DuplicateGroups,
    PolicyOut,
    QualityReportOut,
    QualitySummary,
    Reevaluation,
)
from services.clean.settings import CleanSettings
from shared.errors import ApiError
from shared.events import (
    ASSET_CLEANED,
    ASSET_REJECTED,
    FRAME_SAMPLED,
    AssetCleanedV1,
    AssetIngestedV1,
    AssetRejectedV1,
    DatasetCreatedV1,
    Envelope,
    FrameSampledV1,
    QualityReason,
)
from shared.inbox import applied, claim_many
from shared.outbox import Staged, add_events, current_traceparent
from shared.storage import DERIVED_BUCKET, ObjectStore

log = logging.getLogger(__name__)
tracer = trace.get_tracer("conveyor.clean")

SOURCE = "/conveyor/clean"


class MissingObject(Exception):
    """The event names an object the store does not have (a poison message)."""


def _asset_span(
    name: str, envelope: Envelope, asset: AssetIngestedV1
) -> AbstractContextManager[Span]:
    """A span for one asset's step, in the trace the asset's event carries."""
    context = propagate.extract({"traceparent": envelope.traceparent or ""})
    attributes = {"conveyor.asset_id": str(asset.asset_id), "messaging.message.id": envelope.id}
    return tracer.start_as_current_span(name, context=context, attributes=attributes)


def _reason(check: CheckResult) -> QualityReason:
    return QualityReason(
        code=check.code, message=check.message, value=check.value, threshold=check.threshold
    )


def _check(stored: dict[str, Any]) -> CheckResult:
    return CheckResult(
        stored["code"], stored["passed"], stored["value"], stored["threshold"], stored["message"]
    )


def _duplicate(report: QualityReport) -> Duplicate | None:
    if report.duplicate_of is None or report.duplicate_code is None:
        return None
    return Duplicate(
        report.duplicate_code,  # type: ignore[arg-type]
        str(report.duplicate_of),
        report.duplicate_distance or 0,
    )


@dataclass
class Measured:
    """What reading and checking one asset found, before it is judged."""

    envelope: Envelope
    asset: AssetIngestedV1
    structural: list[CheckResult] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    pixels: str | None = None  # digest of the decoded pixels
    phash: int | None = None  # only when near-duplicate comparison makes sense
    crops: tuple[int, ...] = ()  # crop hashes, with the phash
    frame_events: list[Staged] = field(default_factory=list)  # a video's sampled frames


class Clean:
    """The clean service's application layer."""

    def __init__(
        self,
        settings: CleanSettings,
        sessions: async_sessionmaker[AsyncSession],
        store: ObjectStore,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.store = store
        self._known_datasets: set[uuid.UUID] = set()  # slugs already in the projection
        self.near_index = NearIndex(settings.near_index_max_hashes)

    # ---- events in ------------------------------------------------------------------------

    async def remember_dataset(self, payload: DatasetCreatedV1) -> None:
        """Keep the slug of a new dataset (the API addresses datasets by slug)."""
        async with self.sessions() as session, session.begin():
            await repo.remember_dataset(session, payload.dataset_id, payload.slug)

    async def clean_assets(self, assets: Sequence[tuple[Envelope, AssetIngestedV1]]) -> None:
        """Check new assets, find what they duplicate, judge them and announce the verdicts.

        Works through ``assets`` in slices of ``batch_size``: each slice is measured (up to
        ``analysis_threads`` files at a time), then judged in one transaction that holds the
        locks of its datasets, so its statements are paid once per slice, not per asset.
        Events already applied (a redelivery) are skipped before any file is read.
        """
        size = self.settings.batch_size
        for start in range(0, len(assets), size):
            await self._clean_slice(assets[start : start + size])

    async def _clean_slice(self, assets: Sequence[tuple[Envelope, AssetIngestedV1]]) -> None:
        consumer = self.settings.consumer_group
        async with self.sessions() as session:
            done = await applied(session, inbox, [e.id for e, _ in assets], consumer)
            todo = [(e, a) for e, a in assets if e.id not in done]
            for _, asset in todo:
                if asset.dataset_id not in self._known_datasets:
                    await repo.remember_dataset(session, asset.dataset_id, asset.dataset_slug)
                    self._known_datasets.add(asset.dataset_id)
            await session.commit()
            datasets = {a.dataset_id for _, a in todo}
            rules = {ident: await self._rules(session, ident) for ident in datasets}
        if not todo:
            return
        gate = asyncio.Semaphore(self.settings.analysis_threads)

        async def measured(envelope: Envelope, asset: AssetIngestedV1) -> Measured:
            async with gate:
                with _asset_span("clean measure", envelope, asset):
                    return await self._measure(envelope, asset, rules[asset.dataset_id][0])

        outcomes = await asyncio.gather(*(measured(e, a) for e, a in todo), return_exceptions=True)
        # Judge what could be read; a failure (e.g. a missing object) is raised afterwards, so
        # the consumer retries that event alone while the others are already done.
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        findings = [o for o in outcomes if isinstance(o, Measured)]
        await self._judge(findings, rules)
        if failures:
            raise failures[0]

    async def _judge(
        self, findings: list[Measured], rules: dict[uuid.UUID, tuple[PolicyRules, int]]
    ) -> None:
        """Judge measured assets in one transaction and stage their events."""
        if not findings:
            return
        consumer = self.settings.consumer_group
        datasets = sorted({f.asset.dataset_id for f in findings})
        try:
            async with self.sessions() as session, session.begin():
                ids = [f.envelope.id for f in findings]
                claimed = await claim_many(session, inbox, ids, consumer)
                findings = [f for f in findings if f.envelope.id in claimed]
                for ident in datasets:  # one order everywhere: no deadlock between processes
                    await repo.lock_dataset(session, ident)
                arrivals = await repo.next_arrivals(session, len(findings))
                originals = {
                    ident: await repo.first_with_pixels_among(
                        session,
                        ident,
                        [f.pixels for f in findings if f.asset.dataset_id == ident and f.pixels],
                    )
                    for ident in datasets
                }
                copies = {ident: await self._hashes(session, ident) for ident in datasets}
                reports: list[dict[str, Any]] = []
                events: list[Staged] = []
                for finding, arrival in zip(findings, arrivals, strict=True):
                    # each asset's verdict continues the trace of its upload
                    with _asset_span("clean judge", finding.envelope, finding.asset):
                        report, staged = self._judged(finding, arrival, copies, originals, rules)
                    reports.append(report)
                    events += staged
                await repo.insert_reports(session, reports)
                await add_events(session, outbox, events)
        except BaseException:
            # The copies may hold hashes that were never committed: read them afresh next time.
            for ident in datasets:
                self.near_index.forget(ident)
            raise
        self.near_index.trim()

    def _judged(
        self,
        finding: Measured,
        arrival: int,
        copies: dict[uuid.UUID, DatasetHashes],
        originals: dict[uuid.UUID, dict[str, uuid.UUID]],
        rules: dict[uuid.UUID, tuple[PolicyRules, int]],
    ) -> tuple[dict[str, Any], list[Staged]]:
        """One asset's report row and events (its hash joins the dataset's copy)."""
        asset, (rules_now, version) = finding.asset, rules[finding.asset.dataset_id]
        copy = copies[asset.dataset_id]
        duplicate = self._exact_duplicate(finding, originals[asset.dataset_id])
        if duplicate is None and finding.phash is not None:
            duplicate = self._near_duplicate(finding, copy, rules_now)
        if finding.phash is not None:  # later assets of the slice compare with it
            copy.extend(HashRows.one(arrival, asset.asset_id, finding.phash, finding.crops))
        verdict = judge(finding.metrics, finding.structural, duplicate, rules_now)
        report = self._report_row(finding, arrival, duplicate, verdict, version)
        event = self._verdict_event(report, asset.dataset_slug, verdict)
        events = [replace(event, traceparent=current_traceparent())]
        if not verdict.rejected:
            events += finding.frame_events
        return report, events

    async def _hashes(self, session: AsyncSession, ident: uuid.UUID) -> DatasetHashes:
        """The dataset's in-memory hashes, brought up to date (the dataset lock is held)."""
        copy = self.near_index.dataset(ident)
        copy.extend(await repo.hashes_since(session, ident, copy.newest_arrival))
        return copy

    @staticmethod
    def _exact_duplicate(finding: Measured, originals: dict[str, uuid.UUID]) -> Duplicate | None:
        """Same decoded pixels as an earlier asset (stored, or earlier in this slice)."""
        if finding.pixels is None:
            return None
        original = originals.setdefault(finding.pixels, finding.asset.asset_id)
        if original == finding.asset.asset_id:
            return None
        return Duplicate("exact_duplicate", str(original), 0)

    @staticmethod
    def _near_duplicate(
        finding: Measured, copy: DatasetHashes, rules: PolicyRules
    ) -> Duplicate | None:
        """The earlier asset this one nearly duplicates (closest, then first arrived)."""
        assert finding.phash is not None
        radius = rules.near_duplicate_radius
        found = copy.nearest(finding.phash, finding.crops, radius=radius)
        return Duplicate("near_duplicate", str(found.asset_id), found.distance) if found else None

    @staticmethod
    def _report_row(
        finding: Measured, arrival: int, duplicate: Duplicate | None, verdict: Verdict, version: int
    ) -> dict[str, Any]:
        asset = finding.asset
        return {
            "asset_id": asset.asset_id,
            "dataset_id": asset.dataset_id,
            "media_type": asset.media_type,
            "status": "rejected" if verdict.rejected else "cleaned",
            "metrics": finding.metrics,
            "structural": [asdict(c) for c in finding.structural],
            "reasons": [asdict(c) for c in verdict.reasons],
            "flags": [asdict(c) for c in verdict.flags],
            "pixel_sha256": finding.pixels,
            "phash": repo.to_signed(finding.phash) if finding.phash is not None else None,
            "crop_hashes": repo.pack_crops(finding.crops) if finding.phash is not None else None,
            "duplicate_of": uuid.UUID(duplicate.of_asset) if duplicate else None,
            "duplicate_code": duplicate.code if duplicate else None,
            "duplicate_distance": duplicate.distance if duplicate else None,
            "arrival": arrival,
            "policy_version": version,
        }

    async def _store_frames(
        self, asset: AssetIngestedV1, frames: list[SampledFrame]
    ) -> list[Staged]:
        """Put sampled frames into conveyor-derived; the events that will announce them."""
        events = []
        for frame in frames:
            key = f"frames/{asset.asset_id}/{frame.frame_index:06d}.jpg"
            await self.store.put_stream(
                DERIVED_BUCKET, key, io.BytesIO(frame.jpeg), len(frame.jpeg), "image/jpeg"
            )
            payload = FrameSampledV1(
                video_asset_id=asset.asset_id,
                dataset_id=asset.dataset_id,
                dataset_slug=asset.dataset_slug,
                frame_index=frame.frame_index,
                frame_time_seconds=frame.timestamp,
                bucket=DERIVED_BUCKET,
                object_key=key,
                sha256=hashlib.sha256(frame.jpeg).hexdigest(),
                size_bytes=len(frame.jpeg),
            )
            # Deterministic: re-checking the same video announces the same frames.
            event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"frame:{asset.asset_id}:{frame.frame_index}")
            events.append(
                Staged(
                    FRAME_SAMPLED,
                    payload,
                    SOURCE,
                    subject=str(asset.asset_id),
                    actor="clean",
                    event_id=str(event_id),
                    traceparent=current_traceparent(),
                )
            )
        return events

    async def _measure(
        self, envelope: Envelope, asset: AssetIngestedV1, rules: PolicyRules
    ) -> Measured:
        """Read and check one asset; sampled frames of a video are stored right away."""
        finding = Measured(envelope, asset)
        # The size comes with the event; a missing object shows when it is read.
        if asset.media_type.startswith("video/"):
            video, frames = await asyncio.to_thread(self._analyze_video, asset, rules)
            finding.structural, finding.metrics = list(video.structural), dict(video.metrics)
            finding.frame_events = await self._store_frames(asset, frames)
            return finding
        if asset.size_bytes > self.settings.max_image_bytes:
            limit = self.settings.max_image_bytes
            message = f"{asset.size_bytes} bytes is more than the {limit} read"
            check = CheckResult("file_too_large", False, float(asset.size_bytes), limit, message)
            finding.structural = [check]
            return finding
        thresholds = rules.threshold_set()
        # read and analyse in one worker-thread hop
        report = await asyncio.to_thread(
            lambda: analyze_image(b"".join(self._chunks(asset)), thresholds)
        )
        finding.structural, finding.metrics = list(report.structural), dict(report.metrics)
        finding.pixels = report.pixel_sha256
        if report.phash is not None and near_duplicate_comparable(report.metrics, rules):
            finding.phash, finding.crops = report.phash, report.crop_hashes
        return finding

    def _chunks(self, asset: AssetIngestedV1) -> Iterator[bytes]:
        """The asset's bytes from the store (blocking); MissingObject if it is not there."""
        try:
            yield from self.store.iter_chunks(asset.bucket, asset.object_key)
        except S3Error as exc:
            if exc.code in {"NoSuchKey", "NoSuchObject", "NoSuchBucket"}:
                raise MissingObject(
                    f"s3://{asset.bucket}/{asset.object_key} does not exist"
                ) from exc
            raise

    def _analyze_video(
        self, asset: AssetIngestedV1, rules: PolicyRules
    ) -> tuple[VideoReport, list[SampledFrame]]:
        """Stream the video to a temporary file (never whole in memory), check it, and sample
        frames for labeling if the policy accepts it."""
        settings = self.settings
        with tempfile.NamedTemporaryFile(prefix="conveyor-video-") as spool:
            for chunk in self._chunks(asset):
                spool.write(chunk)
            spool.flush()
            report = analyze_video(spool.name, rules.threshold_set())
            if judge(report.metrics, report.structural, None, rules).rejected:
                return report, []
            frames = sample_frames(
                spool.name,
                every_seconds=settings.frame_every_seconds,
                scene_change=settings.frame_scene_change,
            )
            return report, list(itertools.islice(frames, settings.max_frames_per_video))

    async def _apply(
        self,
        session: AsyncSession,
        report: QualityReport,
        verdict: Verdict,
        dataset_slug: str,
        version: int,
    ) -> None:
        """Store a new verdict on a stored report and stage the event that announces it."""
        report.status = "rejected" if verdict.rejected else "cleaned"
        report.reasons = [asdict(c) for c in verdict.reasons]
        report.flags = [asdict(c) for c in verdict.flags]
        report.policy_version = version
        report.updated_at = datetime.now(UTC)
        fields = {
            "asset_id": report.asset_id,
            "dataset_id": report.dataset_id,
            "media_type": report.media_type,
            "metrics": report.metrics,
            "policy_version": version,
        }
        await add_events(session, outbox, [self._verdict_event(fields, dataset_slug, verdict)])

    @staticmethod
    def _verdict_event(report: dict[str, Any], dataset_slug: str, verdict: Verdict) -> Staged:
        """The asset.cleaned or asset.rejected event that announces a verdict."""
        common: dict[str, Any] = {
            "asset_id": report["asset_id"],
            "dataset_id": report["dataset_id"],
            "dataset_slug": dataset_slug,
            "media_type": report["media_type"],
            "metrics": report["metrics"],
            "flags": [_reason(c) for c in verdict.flags],
            "policy_version": report["policy_version"],
        }
        subject = str(report["asset_id"])
        if verdict.rejected:
            reasons = [_reason(c) for c in verdict.reasons]
            payload: AssetRejectedV1 | AssetCleanedV1 = AssetRejectedV1(**common, reasons=reasons)
            return Staged(ASSET_REJECTED, payload, SOURCE, subject=subject, actor="clean")
        return Staged(ASSET_CLEANED, AssetCleanedV1(**common), SOURCE, subject, actor="clean")

    async def _rules(self, session: AsyncSession, dataset: uuid.UUID) -> tuple[PolicyRules, int]:
        stored = await repo.policy(session, dataset)
        if stored is None:
            return PolicyRules(), 0
        return PolicyRules.model_validate(stored.rules), stored.version

    # ---- API ------------------------------------------------------------------------------

    async def _dataset(self, session: AsyncSession, slug: str) -> uuid.UUID:
        ident = await repo.dataset_id(session, slug)
        if ident is None:
            raise ApiError(404, "dataset_not_found", f"no dataset with slug {slug!r} seen yet")
        return ident

    async def report(self, asset_id: uuid.UUID) -> QualityReportOut:
        """An asset's quality report."""
        async with self.sessions() as session:
            report = await session.get(QualityReport, asset_id)
        if report is None:
            raise ApiError(404, "report_not_found", f"no quality report for asset {asset_id} yet")
        return QualityReportOut.from_report(report)

    async def get_policy(self, slug: str) -> PolicyOut:
        """A dataset's policy with every default spelled out."""
        async with self.sessions() as session:
            ident = await self._dataset(session, slug)
            rules, version = await self._rules(session, ident)
        return PolicyOut.from_rules(slug, version, rules)

    async def set_policy(self, slug: str, rules: PolicyRules, by: str) -> Reevaluation:
        """Replace a dataset's policy and re-judge its assets from their stored findings."""
        async with self.sessions() as session, session.begin():
            ident = await self._dataset(session, slug)
            await repo.lock_dataset(session, ident)
            stored = await repo.policy(session, ident)
            version = (stored.version if stored else 0) + 1
            if stored is None:
                session.add(
                    Policy(
                        dataset_id=ident, version=version, rules=rules.model_dump(), updated_by=by
                    )
                )
            else:
                stored.version, stored.rules, stored.updated_by = version, rules.model_dump(), by
                stored.updated_at = datetime.now(UTC)
            checked = changed = 0
            after = 0
            while True:
                reports = await repo.reports_of(session, ident, after, 500)
                for report in reports:
                    checked += 1
                    verdict = judge(
                        report.metrics,
                        [_check(c) for c in report.structural],
                        _duplicate(report),
                        rules,
                    )
                    before = (report.status, report.reasons, report.flags)
                    new_status = "rejected" if verdict.rejected else "cleaned"
                    after_state = (
                        new_status,
                        [asdict(c) for c in verdict.reasons],
                        [asdict(c) for c in verdict.flags],
                    )
                    if before != after_state:
                        changed += 1
                        await self._apply(session, report, verdict, slug, version)
                    else:
                        report.policy_version = version
                if len(reports) < 500:
                    break
                after = reports[-1].arrival
        return Reevaluation(policy_version=version, assets_checked=checked, assets_changed=changed)

    async def summary(self, slug: str) -> QualitySummary:
        """Counts per outcome and issue, and metric distributions, for a dataset."""
        statuses: Counter[str] = Counter()
        issues: Counter[str] = Counter()
        flags: Counter[str] = Counter()
        values: dict[str, list[float]] = {}
        async with self.sessions() as session:
            ident = await self._dataset(session, slug)
            after = 0
            while True:
                reports = await repo.reports_of(session, ident, after, 2000)
                for report in reports:
                    statuses[report.status] += 1
                    issues.update(r["code"] for r in report.reasons)
                    flags.update(f["code"] for f in report.flags)
                    for name, value in report.metrics.items():
                        values.setdefault(name, []).append(float(value))
                if len(reports) < 2000:
                    break
                after = reports[-1].arrival
        distributions = {
            name: {
                q: float(np.percentile(vals, p))
                for q, p in (("min", 0), ("p05", 5), ("p50", 50), ("p95", 95), ("max", 100))
            }
            for name, vals in sorted(values.items())
        }
        return QualitySummary(
            dataset_slug=slug,
            assets=sum(statuses.values()),
            cleaned=statuses["cleaned"],
            rejected=statuses["rejected"],
            rejections_by_reason=dict(issues.most_common()),
            flags_by_reason=dict(flags.most_common()),
            metric_distributions=distributions,
        )

    async def duplicates(self, slug: str) -> DuplicateGroups:
        """Duplicate groups: each original with the later copies of it."""
        async with self.sessions() as session:
            ident = await self._dataset(session, slug)
            pairs = await repo.duplicate_pairs(session, ident)
        groups: dict[str, DuplicateGroup] = {}
        for original, copy, code, distance in pairs:
            group = groups.setdefault(str(original), DuplicateGroup(original=str(original)))
            group.copies.append({"asset_id": str(copy), "kind": code, "distance": distance})
        return DuplicateGroups(dataset_slug=slug, groups=list(groups.values()))
