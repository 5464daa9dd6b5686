"""A new asset and its ``asset.ingested`` event, written together.

Uploads, landing drops and sampled video frames all end here; the two consumed ways in also
claim the event that caused them, so a redelivery registers nothing twice. Uploads of
concurrent requests are registered together (:func:`register_uploads`, through
:class:`~services.ingest.group_commit.GroupCommit`): one statement writes their assets and
events and commits by itself (:class:`~shared.uow.SingleStatement`), one round trip.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TypeAlias

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import Link, SpanContext
from sqlalchemy.exc import IntegrityError

from services.ingest import repository as repo
from services.ingest.context import Ingest
from services.ingest.domain import Inspected
from services.ingest.models import Asset, Dataset
from services.ingest.schemas import AssetOut
from services.ingest.use_cases.assets import asset_out
from shared.db import is_unavailable
from shared.events import AssetIngestedV1, Envelope
from shared.ids import random_uuid
from shared.storage import RAW_BUCKET, content_address
from shared.uow import SingleStatement, UnitOfWork

AssetSource: TypeAlias = Literal["upload", "objectstore", "frame"]

tracer = trace.get_tracer("conveyor.ingest")


class AlreadyApplied(Exception):
    """The event's effects were committed by an earlier delivery."""


def new_asset(
    dataset: Dataset,
    info: Inspected,
    filename: str,
    *,
    uploaded_by: str,
    source: AssetSource,
    tags: list[str],
    location: tuple[str, str] | None = None,
    frame_of: tuple[uuid.UUID, float] | None = None,
) -> Asset:
    """The row of a new asset; its bytes are content-addressed in the raw bucket unless located."""
    bucket, object_key = location or (RAW_BUCKET, content_address(info.sha256))
    return Asset(
        id=random_uuid(),
        created_at=datetime.now(UTC),
        dataset_id=dataset.id,
        filename=filename,
        media_type=info.media_type,
        size_bytes=info.size,
        sha256=info.sha256,
        source=source,
        uploaded_by=uploaded_by,
        tags=tags,
        bucket=bucket,
        object_key=object_key,
        parent_asset_id=frame_of[0] if frame_of else None,
        frame_time_seconds=frame_of[1] if frame_of else None,
    )


def emit_ingested(
    uow: UnitOfWork | SingleStatement,
    asset: Asset,
    dataset: Dataset,
    traceparent: str | None = None,
) -> None:
    """Stage the ``asset.ingested`` event of a new asset (in ``traceparent``'s trace if given,
    else the current span's); its subject is the asset's id."""
    uow.emit(
        AssetIngestedV1(
            asset_id=asset.id,
            dataset_id=dataset.id,
            dataset_slug=dataset.slug,
            sha256=asset.sha256,
            size_bytes=asset.size_bytes,
            media_type=asset.media_type,
            filename=asset.filename,
            source=asset.source,
            uploaded_by=asset.uploaded_by,
            tags=asset.tags,
            bucket=asset.bucket,
            object_key=asset.object_key,
            parent_asset_id=asset.parent_asset_id,
            frame_time_seconds=asset.frame_time_seconds,
        ),
        subject=str(asset.id),
        actor=asset.uploaded_by,
        traceparent=traceparent,
    )


async def existing_asset(ingest: Ingest, dataset_id: uuid.UUID, sha256: str) -> Asset | None:
    """The dataset's asset with these bytes, if it has one."""
    async with ingest.units.read() as session:
        return await repo.asset_by_hash(session, dataset_id, sha256)


async def register_asset(
    ingest: Ingest, dataset: Dataset, asset: Asset, *, envelope: Envelope | None
) -> AssetOut:
    """Insert a :func:`new_asset` and its event, claiming ``envelope`` if an event caused it.

    Raises :class:`AlreadyApplied` if an earlier delivery of ``envelope`` did it already.
    """
    try:
        async with ingest.units.begin() as uow:
            if envelope is not None and not await uow.claim(envelope):
                raise AlreadyApplied
            uow.session.add(asset)
            await uow.session.flush()
            emit_ingested(uow, asset, dataset)
        return asset_out(asset, dataset.slug)
    except IntegrityError:
        # The same bytes arrived concurrently and the other request won the unique index.
        existing = await existing_asset(ingest, dataset.id, asset.sha256)
        if existing is None:
            raise
        return asset_out(existing, dataset.slug, duplicate=True)


@dataclass(frozen=True)
class UploadRegistration:
    """The new files of one upload request, stored already, to register together."""

    dataset: Dataset
    files: list[tuple[Inspected, str]]  # what each file is, and its display name
    uploaded_by: str
    tags: list[str]
    # The request's trace: its events continue it, whichever request's task commits them.
    traceparent: str | None
    # The request's span, which the batch's span links to.
    span: SpanContext | None = None


async def register_uploads(
    ingest: Ingest, batch: list[UploadRegistration]
) -> list[dict[str, AssetOut] | Exception]:
    """Register the files of several requests in one statement; each request's assets by
    sha256. Bytes the dataset has already (also when they arrived concurrently, or twice in
    the batch) come back as the existing asset marked ``duplicate``.

    If that statement fails for another reason than an unreachable database, each request
    is retried alone, so one request's failure is its own.

    The batch is one span (its statements are not traced one by one), linked to the trace
    of every request in it: it belongs to none of them alone.
    """
    links = [Link(r.span) for r in batch if r.span is not None and r.span.is_valid]
    with (
        tracer.start_as_current_span(
            "register uploads",
            context=Context(),
            links=links,
            attributes={"conveyor.upload_requests": len(batch)},
        ),
        suppress_instrumentation(),
    ):
        try:
            return list(await _register_together(ingest, batch))
        except Exception as exc:
            if len(batch) == 1 or is_unavailable(exc):
                raise
        results: list[dict[str, AssetOut] | Exception] = []
        for request in batch:
            try:
                results.extend(await _register_together(ingest, [request]))
            except Exception as exc:
                results.append(exc)
        return results


async def _register_together(
    ingest: Ingest, batch: list[UploadRegistration]
) -> list[dict[str, AssetOut]]:
    assets = [
        [
            new_asset(
                r.dataset, info, name, uploaded_by=r.uploaded_by, source="upload", tags=r.tags
            )
            for info, name in r.files
        ]
        for r in batch
    ]
    every = [a for request in assets for a in request]
    async with ingest.units.single_statement() as write:
        for request, rows in zip(batch, assets, strict=True):
            for asset in rows:
                emit_ingested(write, asset, request.dataset, request.traceparent)
        inserted = await repo.insert_assets_skipping_known(write, every)
        missing = {(a.dataset_id, a.sha256) for a in every if a.id not in inserted}
        existing = await repo.assets_by_dataset_and_hash(write.session, missing)
    results = []
    for request, rows in zip(batch, assets, strict=True):
        slug = request.dataset.slug
        results.append(
            {
                a.sha256: asset_out(a, slug)
                if a.id in inserted
                else asset_out(existing[(a.dataset_id, a.sha256)], slug, duplicate=True)
                for a in rows
            }
        )
    return results
