"""Uploads: every file of one request is checked, stored and registered, or none is."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from sqlalchemy.exc import IntegrityError

from services.ingest import repository as repo
from services.ingest.context import Ingest
from services.ingest.domain import FileRejected, Inspected, inspect_chunks
from services.ingest.models import Asset, Dataset
from services.ingest.schemas import AssetOut
from services.ingest.use_cases.assets import asset_out
from services.ingest.use_cases.datasets import find_dataset
from services.ingest.use_cases.registration import emit_ingested, new_asset, register_asset
from shared.auth import Principal
from shared.errors import ApiError
from shared.storage import RAW_BUCKET, content_address

CHUNK = 1024 * 1024
STAT_BEFORE_PUT_BYTES = 8 * 1024 * 1024
# Files of one request written to the store at the same time.
PARALLEL_PUTS = 4


@dataclass
class IncomingFile:
    """One file of an upload request, spooled to a seekable file.

    ``inspected`` is set when the bytes were already sniffed, sized and hashed as they
    arrived (see :mod:`services.ingest.upload_stream`); otherwise the upload does it.
    """

    filename: str
    stream: BinaryIO
    inspected: Inspected | None = None


def _read_file(stream: BinaryIO) -> Iterable[bytes]:
    stream.seek(0)
    while chunk := stream.read(CHUNK):
        yield chunk


async def upload(
    ingest: Ingest,
    principal: Principal,
    slug: str,
    files: Sequence[IncomingFile],
    tags: list[str],
) -> list[AssetOut]:
    """Store and register every file of one request, or none if any file is refused."""
    async with ingest.units.read() as session:
        dataset = await find_dataset(ingest, session, slug, principal)
    inspected: list[Inspected] = []
    for f in files:
        if f.inspected is not None:
            inspected.append(f.inspected)
            continue
        try:
            inspected.append(
                await asyncio.to_thread(
                    inspect_chunks, _read_file(f.stream), ingest.settings.max_upload_bytes
                )
            )
        except FileRejected as exc:
            raise ApiError(
                exc.status,
                exc.code,
                f"{f.filename}: {exc.message}; nothing from this request was stored",
                {"filename": f.filename},
            ) from exc
    known = await _existing_many(ingest, dataset.id, [info.sha256 for info in inspected])
    fresh: dict[str, tuple[IncomingFile, Inspected]] = {}  # first file with those bytes
    for f, info in zip(files, inspected, strict=True):
        if info.sha256 not in known:
            fresh.setdefault(info.sha256, (f, info))
    gate = asyncio.Semaphore(PARALLEL_PUTS)

    async def store(f: IncomingFile, info: Inspected) -> None:
        key = content_address(info.sha256)
        async with gate:
            # Small blobs are just (re)written: cheaper than asking the store first.
            if (
                info.size <= STAT_BEFORE_PUT_BYTES
                or await ingest.store.stat(RAW_BUCKET, key) is None
            ):
                f.stream.seek(0)
                await ingest.store.put_stream(RAW_BUCKET, key, f.stream, info.size, info.media_type)

    await asyncio.gather(*(store(f, info) for f, info in fresh.values()))
    new = [(info, f.filename) for f, info in fresh.values()]
    created = await _register_uploads(ingest, dataset, new, principal.name, tags)
    results = []
    for info in inspected:
        if info.sha256 in known:
            results.append(asset_out(known[info.sha256], dataset.slug, duplicate=True))
        else:
            out = created[info.sha256]
            first = fresh[info.sha256][1] is info  # a repeat within the request is a copy
            results.append(out if first else out.model_copy(update={"duplicate": True}))
    return results


async def _existing_many(
    ingest: Ingest, dataset_id: uuid.UUID, hashes: list[str]
) -> dict[str, Asset]:
    async with ingest.units.read() as session:
        return await repo.assets_by_hashes(session, dataset_id, hashes)


async def _register_uploads(
    ingest: Ingest,
    dataset: Dataset,
    new: list[tuple[Inspected, str]],
    uploaded_by: str,
    tags: list[str],
) -> dict[str, AssetOut]:
    """Register a request's new files in one unit of work; by sha256."""
    if not new:
        return {}
    try:
        async with ingest.units.begin() as uow:
            assets = [
                new_asset(dataset, info, name, uploaded_by=uploaded_by, source="upload", tags=tags)
                for info, name in new
            ]
            uow.session.add_all(assets)
            await uow.session.flush()
            for asset in assets:
                emit_ingested(uow, asset, dataset)
        return {a.sha256: asset_out(a, dataset.slug) for a in assets}
    except IntegrityError:
        # Some of the bytes arrived concurrently: register one by one (each may be a copy).
        outs = {}
        for info, name in new:
            asset = new_asset(
                dataset, info, name, uploaded_by=uploaded_by, source="upload", tags=tags
            )
            outs[info.sha256] = await register_asset(ingest, dataset, asset, envelope=None)
        return outs
