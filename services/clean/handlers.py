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
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import numpy as np
from minio.error import S3Error
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.clean import repository as repo
from services.clean.checks import (
    CheckResult,
    analyze_image,
    band_keys,
    nearest_within,
    probe_keys,
)
from services.clean.models import Policy, QualityReport, inbox, outbox
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
from services.clean.video import SampledFrame, VideoReport, analyze_video, sample_frames
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
from shared.inbox import claim
from shared.outbox import add_event
from shared.storage import DERIVED_BUCKET, ObjectStore

log = logging.getLogger(__name__)

SOURCE = "/conveyor/clean"


class MissingObject(Exception):
    """The event names an object the store does not have (a poison message)."""


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

    # ---- events in ------------------------------------------------------------------------

    async def remember_dataset(self, payload: DatasetCreatedV1) -> None:
        """Keep the slug of a new dataset (the API addresses datasets by slug)."""
        async with self.sessions() as session, session.begin():
            await repo.remember_dataset(session, payload.dataset_id, payload.slug)

    async def clean_asset(self, envelope: Envelope, asset: AssetIngestedV1) -> None:
        """Check a new asset, find what it duplicates, judge it and announce the verdict."""
        async with self.sessions() as session:
            if asset.dataset_id not in self._known_datasets:
                await repo.remember_dataset(session, asset.dataset_id, asset.dataset_slug)
                await session.commit()
                self._known_datasets.add(asset.dataset_id)
            rules, version = await self._rules(session, asset.dataset_id)
        structural, metrics, pixels, phash, frames = await self._measure(asset, rules)
        if not near_duplicate_comparable(metrics, rules):
            phash = None
        frame_events = await self._store_frames(asset, frames)
        async with self.sessions() as session, session.begin():
            if not await claim(session, inbox, envelope.id, self.settings.consumer_group):
                return
            await repo.lock_dataset(session, asset.dataset_id)
            arrival = await repo.next_arrival(session)
            duplicate = await self._find_duplicate(session, asset, pixels, phash, rules)
            if phash is not None:
                await repo.index_hash(
                    session, asset.dataset_id, asset.asset_id, phash, band_keys(phash), arrival
                )
            verdict = judge(metrics, structural, duplicate, rules)
            report = QualityReport(
                asset_id=asset.asset_id,
                dataset_id=asset.dataset_id,
                media_type=asset.media_type,
                metrics=metrics,
                structural=[asdict(c) for c in structural],
                pixel_sha256=pixels,
                phash=repo.to_signed(phash) if phash is not None else None,
                duplicate_of=uuid.UUID(duplicate.of_asset) if duplicate else None,
                duplicate_code=duplicate.code if duplicate else None,
                duplicate_distance=duplicate.distance if duplicate else None,
                arrival=arrival,
                status="",
                reasons=[],
                flags=[],
                policy_version=version,
            )
            session.add(report)
            await self._apply(session, report, verdict, asset.dataset_slug, version)
            if not verdict.rejected:
                for event_id, payload in frame_events:
                    await add_event(
                        session,
                        outbox,
                        FRAME_SAMPLED,
                        payload,
                        source=SOURCE,
                        subject=str(asset.asset_id),
                        actor="clean",
                        event_id=event_id,
                    )

    async def _store_frames(
        self, asset: AssetIngestedV1, frames: list[SampledFrame]
    ) -> list[tuple[str, FrameSampledV1]]:
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
            events.append((str(event_id), payload))
        return events

    async def _measure(
        self, asset: AssetIngestedV1, rules: PolicyRules
    ) -> tuple[list[CheckResult], dict[str, float], str | None, int | None, list[SampledFrame]]:
        # The size comes with the event; a missing object shows when it is read.
        if asset.media_type.startswith("video/"):
            video, frames = await asyncio.to_thread(self._analyze_video, asset, rules)
            return list(video.structural), dict(video.metrics), None, None, frames
        if asset.size_bytes > self.settings.max_image_bytes:
            limit = self.settings.max_image_bytes
            message = f"{asset.size_bytes} bytes is more than the {limit} read"
            check = CheckResult("file_too_large", False, float(asset.size_bytes), limit, message)
            return [check], {}, None, None, []
        data = await asyncio.to_thread(lambda: b"".join(self._chunks(asset)))
        report = await asyncio.to_thread(analyze_image, data, rules.threshold_set())
        return (
            list(report.structural),
            dict(report.metrics),
            report.pixel_sha256,
            report.phash,
            [],
        )

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

    async def _find_duplicate(
        self,
        session: AsyncSession,
        asset: AssetIngestedV1,
        pixels: str | None,
        phash: int | None,
        rules: PolicyRules,
    ) -> Duplicate | None:
        if pixels is not None:
            original = await repo.first_with_pixels(session, asset.dataset_id, pixels)
            if original is not None and original != asset.asset_id:
                return Duplicate("exact_duplicate", str(original), 0)
        if phash is None:
            return None
        radius = rules.near_duplicate_radius
        candidates = await repo.band_candidates(
            session, asset.dataset_id, probe_keys(phash, radius)
        )
        found = nearest_within(
            phash, [(str(a), h) for a, h in candidates if a != asset.asset_id], radius
        )
        return Duplicate("near_duplicate", found[0], found[1]) if found else None

    async def _apply(
        self,
        session: AsyncSession,
        report: QualityReport,
        verdict: Verdict,
        dataset_slug: str,
        version: int,
    ) -> None:
        """Store a verdict on a report and stage the event that announces it."""
        report.status = "rejected" if verdict.rejected else "cleaned"
        report.reasons = [asdict(c) for c in verdict.reasons]
        report.flags = [asdict(c) for c in verdict.flags]
        report.policy_version = version
        report.updated_at = datetime.now(UTC)
        common: dict[str, Any] = {
            "asset_id": report.asset_id,
            "dataset_id": report.dataset_id,
            "dataset_slug": dataset_slug,
            "media_type": report.media_type,
            "metrics": report.metrics,
            "flags": [_reason(c) for c in verdict.flags],
            "policy_version": version,
        }
        if verdict.rejected:
            await add_event(
                session,
                outbox,
                ASSET_REJECTED,
                AssetRejectedV1(**common, reasons=[_reason(c) for c in verdict.reasons]),
                source=SOURCE,
                subject=str(report.asset_id),
                actor="clean",
            )
        else:
            await add_event(
                session,
                outbox,
                ASSET_CLEANED,
                AssetCleanedV1(**common),
                source=SOURCE,
                subject=str(report.asset_id),
                actor="clean",
            )

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
