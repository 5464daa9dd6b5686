"""Uploads: every file of one request is checked, stored and registered, or none is.

Registration is shared with concurrent requests (one statement for all; see
:func:`~services.ingest.use_cases.registration.register_uploads`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import BinaryIO

from opentelemetry.trace import get_current_span

from services.ingest import repository as repo
from services.ingest.context import Ingest
from services.ingest.domain import FileRejected, Inspected, inspect_chunks
from services.ingest.group_commit import GroupCommit
from services.ingest.models import Asset
from services.ingest.schemas import AssetOut
from services.ingest.use_cases.assets import asset_out
from services.ingest.use_cases.datasets import dataset_for
from services.ingest.use_cases.registration import UploadRegistration, register_uploads
from shared.auth import Principal
from shared.errors import ApiError
from shared.outbox import span_traceparent
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
    dataset = await dataset_for(ingest, slug, principal)
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
    # A small blob is just (re)written, cheaper than asking first: registering it tells
    # whether the dataset had those bytes. A request with a big file asks first, so that
    # bytes the dataset has are not sent to the store again.
    big = any(info.size > STAT_BEFORE_PUT_BYTES for info in inspected)
    known = await _existing_many(ingest, dataset.id, [i.sha256 for i in inspected]) if big else {}
    fresh: dict[str, tuple[IncomingFile, Inspected]] = {}  # first file with those bytes
    for f, info in zip(files, inspected, strict=True):
        if info.sha256 not in known:
            fresh.setdefault(info.sha256, (f, info))
    gate = asyncio.Semaphore(PARALLEL_PUTS)

    async def store(f: IncomingFile, info: Inspected) -> None:
        key = content_address(info.sha256)
        async with gate:
            if (
                info.size <= STAT_BEFORE_PUT_BYTES
                or await ingest.store.stat(RAW_BUCKET, key) is None
            ):
                f.stream.seek(0)
                await ingest.store.put_stream(RAW_BUCKET, key, f.stream, info.size, info.media_type)

    if len(fresh) == 1:
        await store(*next(iter(fresh.values())))
    else:
        await asyncio.gather(*(store(f, info) for f, info in fresh.values()))
    created: dict[str, AssetOut] = {}
    if fresh:
        new = [(info, f.filename) for f, info in fresh.values()]
        span = get_current_span()  # the request's: the batch links to it, its events continue it
        registration = UploadRegistration(
            dataset, new, principal.name, tags, span_traceparent(span), span.get_span_context()
        )
        created = await _registrations(ingest).submit(registration)
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


def _registrations(ingest: Ingest) -> GroupCommit[UploadRegistration, dict[str, AssetOut]]:
    """The ingest process's group commit of upload registrations (made on first use)."""
    if ingest.upload_registrations is None:
        ingest.upload_registrations = GroupCommit(partial(register_uploads, ingest))
    group: GroupCommit[UploadRegistration, dict[str, AssetOut]] = ingest.upload_registrations
    return group
