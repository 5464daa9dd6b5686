"""Video frames: a frame the clean service sampled becomes an image asset of the video's dataset."""

from __future__ import annotations

import contextlib

from services.ingest import repository as repo
from services.ingest.context import Ingest
from services.ingest.domain import Inspected
from services.ingest.use_cases.registration import (
    AlreadyApplied,
    existing_asset,
    new_asset,
    register_asset,
)
from shared.events import FrameSampledV1
from shared.routing import Event


async def register_frame(ingest: Ingest, event: Event[FrameSampledV1]) -> None:
    """Make a frame the clean service sampled from a video an image asset of its dataset."""
    frame = event.payload
    async with ingest.units.read() as session:
        dataset = await repo.dataset_by_slug(session, frame.dataset_slug)
    if dataset is None:
        raise LookupError(f"frame of a video in unknown dataset {frame.dataset_slug!r}")
    if await existing_asset(ingest, dataset.id, frame.sha256) is not None:
        return  # the same picture is already an asset of the dataset
    info = Inspected("image/jpeg", frame.size_bytes, frame.sha256)
    name = f"frame-{frame.frame_index:06d}-{frame.frame_time_seconds:.3f}s.jpg"
    asset = new_asset(
        dataset,
        info,
        name,
        uploaded_by="clean",
        source="frame",
        tags=[],
        location=(frame.bucket, frame.object_key),
        frame_of=(frame.video_asset_id, frame.frame_time_seconds),
    )
    with contextlib.suppress(AlreadyApplied):
        await register_asset(ingest, dataset, asset, envelope=event.envelope)
