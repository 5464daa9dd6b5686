"""Reading an asset from the object store and checking it, outside any transaction.

Images are read and analysed in one worker-thread hop; a video is spooled to a temporary file
(never whole in memory), checked, and if the policy accepts it its sampled frames are stored
in conveyor-derived right away (the events announcing them wait for the verdict).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import itertools
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from minio.error import S3Error

from services.clean import domain
from services.clean.checks import analyze_image
from services.clean.checks.video import SampledFrame, VideoReport, analyze_video, sample_frames
from services.clean.context import Clean
from services.clean.domain import Findings
from services.clean.policy import PolicyRules, judge
from services.clean.settings import CleanSettings
from shared.events import AssetIngestedV1, Envelope, FrameSampledV1
from shared.outbox import current_traceparent
from shared.storage import DERIVED_BUCKET


class MissingObject(Exception):
    """The event names an object the store does not have (a poison message)."""


@dataclass(frozen=True)
class StoredFrame:
    """A sampled frame put into conveyor-derived, and how its event will be announced."""

    payload: FrameSampledV1
    event_id: str  # deterministic: re-checking the same video announces the same frames
    traceparent: str | None  # the span that sampled it


@dataclass(frozen=True)
class Measured:
    """One asset's event, what its checks found and the frames stored for it."""

    envelope: Envelope
    asset: AssetIngestedV1
    findings: Findings
    frames: list[StoredFrame] = field(default_factory=list)


async def measure(
    clean: Clean, envelope: Envelope, asset: AssetIngestedV1, rules: PolicyRules
) -> Measured:
    """Read and check one asset; sampled frames of a video are stored right away."""
    # The size comes with the event; a missing object shows when it is read.
    if asset.media_type.startswith("video/"):
        video, frames = await asyncio.to_thread(_analyze_video, clean, asset, rules)
        stored = await _store_frames(clean, asset, frames)
        return Measured(envelope, asset, domain.video_findings(video), stored)
    limit = clean.settings.max_image_bytes
    if asset.size_bytes > limit:
        return Measured(envelope, asset, domain.unread_findings(asset.size_bytes, limit))
    thresholds = rules.threshold_set()
    # read and analyse in one worker-thread hop
    report = await asyncio.to_thread(
        lambda: analyze_image(b"".join(_chunks(clean, asset)), thresholds, clean.decode_budget)
    )
    return Measured(envelope, asset, domain.image_findings(report, rules))


def _chunks(clean: Clean, asset: AssetIngestedV1) -> Iterator[bytes]:
    """The asset's bytes from the store (blocking); MissingObject if it is not there."""
    try:
        yield from clean.store.iter_chunks(asset.bucket, asset.object_key)
    except S3Error as exc:
        if exc.code in {"NoSuchKey", "NoSuchObject", "NoSuchBucket"}:
            raise MissingObject(f"s3://{asset.bucket}/{asset.object_key} does not exist") from exc
        raise


def _analyze_video(
    clean: Clean, asset: AssetIngestedV1, rules: PolicyRules
) -> tuple[VideoReport, list[SampledFrame]]:
    """Check a spooled copy of the video, and sample frames if the policy accepts it."""
    settings = clean.settings
    with tempfile.NamedTemporaryFile(prefix="conveyor-video-") as spool:
        for chunk in _chunks(clean, asset):
            spool.write(chunk)
        spool.flush()
        return check_video_file(spool.name, rules, settings)


def check_video_file(
    path: str, rules: PolicyRules, settings: CleanSettings
) -> tuple[VideoReport, list[SampledFrame]]:
    """Check a local video file and, if the policy accepts it, sample its frames (blocking).

    The part of measuring a video that needs no store: bench/clean_bench/mix.py runs it
    in-process as the floor the service's CPU per video is compared with.
    """
    report = analyze_video(path, rules.threshold_set())
    if judge(report.metrics, report.structural, None, rules).rejected:
        return report, []
    frames = sample_frames(
        path,
        every_seconds=settings.frame_every_seconds,
        scene_change=settings.frame_scene_change,
    )
    return report, list(itertools.islice(frames, settings.max_frames_per_video))


async def _store_frames(
    clean: Clean, asset: AssetIngestedV1, frames: list[SampledFrame]
) -> list[StoredFrame]:
    """Put sampled frames into conveyor-derived."""
    stored = []
    for frame in frames:
        key = f"frames/{asset.asset_id}/{frame.frame_index:06d}.jpg"
        await clean.store.put_stream(
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
        event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"frame:{asset.asset_id}:{frame.frame_index}")
        stored.append(StoredFrame(payload, str(event_id), current_traceparent()))
    return stored
