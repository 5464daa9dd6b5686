"""Ingest's use cases. Each write commits in exactly one place: the ``session.begin()`` here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import BinaryIO, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest import repository as repo
from services.ingest.domain import Digest, LandingObject, dataset_of_landing_key
from services.ingest.models import ApiKey, Asset, Dataset, inbox, outbox
from services.ingest.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    AssetDetail,
    AssetOut,
    AssetPage,
    DatasetCreate,
    DatasetOut,
    DatasetPage,
)
from services.ingest.settings import IngestSettings
from shared.auth import Principal, Role, generate_api_key, hash_api_key
from shared.errors import ApiError
from shared.events import (
    API_KEY_CREATED,
    API_KEY_REVOKED,
    ASSET_INGESTED,
    DATASET_CREATED,
    DROP_REJECTED,
    OBJECT_CREATED,
    ApiKeyCreatedV1,
    ApiKeyRevokedV1,
    AssetIngestedV1,
    DatasetCreatedV1,
    DropRejectedV1,
    Envelope,
    FrameSampledV1,
    ObjectCreatedV1,
)
from shared.inbox import claim
from shared.outbox import Staged, add_event, add_events
from shared.storage import LANDING_BUCKET, RAW_BUCKET, ObjectStore, content_address

log = logging.getLogger(__name__)

SOURCE = "/conveyor/ingest"
CHUNK = 1024 * 1024
STAT_BEFORE_PUT_BYTES = 8 * 1024 * 1024


@dataclass
class IncomingFile:
    """One file of an upload request, already spooled by the web server to a seekable file."""

    filename: str
    stream: BinaryIO


@dataclass(frozen=True)
class Inspected:
    """What one pass over a file told us."""

    media_type: str
    size: int
    sha256: str


class FileRejected(Exception):
    """A file ingest refuses: the reason code and message end up in an error body or event."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def inspect_chunks(chunks: Iterable[bytes], max_bytes: int) -> Inspected:
    """Sniff, size and hash a stream in one pass, stopping as soon as it is over the limit."""
    digest = Digest()
    for chunk in chunks:
        digest.feed(chunk)
        if digest.size > max_bytes:
            raise FileRejected(413, "file_too_large", f"file is larger than {max_bytes} bytes")
    media_type = digest.media_type
    if media_type is None:
        raise FileRejected(
            415,
            "unsupported_media_type",
            "not a supported image or video (JPEG, PNG, WebP, TIFF, BMP, MP4/MOV, AVI, MKV/WebM)",
        )
    return Inspected(media_type, digest.size, digest.sha256)


def _read_file(stream: BinaryIO) -> Iterable[bytes]:
    stream.seek(0)
    while chunk := stream.read(CHUNK):
        yield chunk


def asset_out(asset: Asset, dataset_slug: str, duplicate: bool = False) -> AssetOut:
    """The API form of an asset."""
    return AssetOut(
        id=asset.id,
        dataset_slug=dataset_slug,
        filename=asset.filename,
        media_type=asset.media_type,
        size_bytes=asset.size_bytes,
        sha256=asset.sha256,
        source=asset.source,
        uploaded_by=asset.uploaded_by,
        tags=list(asset.tags or []),
        created_at=asset.created_at,
        parent_asset_id=asset.parent_asset_id,
        frame_time_seconds=asset.frame_time_seconds,
        duplicate=duplicate,
    )


class Ingest:
    """The ingest service's application layer."""

    def __init__(
        self,
        settings: IngestSettings,
        sessions: async_sessionmaker[AsyncSession],
        store: ObjectStore,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.store = store
        # Datasets are never changed or deleted, so a found one can be remembered.
        self._datasets: dict[str, Dataset] = {}
        self._reconcile_wanted = asyncio.Event()

    # ---- datasets -------------------------------------------------------------------------

    async def create_dataset(self, principal: Principal, body: DatasetCreate) -> DatasetOut:
        """Create a dataset; 409 if the slug is taken."""
        try:
            async with self.sessions() as session, session.begin():
                dataset = Dataset(
                    id=uuid.uuid4(), slug=body.slug, name=body.name, created_by=principal.name
                )
                session.add(dataset)
                await session.flush()
                await session.refresh(dataset)
                await add_event(
                    session,
                    outbox,
                    DATASET_CREATED,
                    DatasetCreatedV1(
                        dataset_id=dataset.id,
                        slug=dataset.slug,
                        name=dataset.name,
                        created_by=principal.name,
                    ),
                    source=SOURCE,
                    subject=str(dataset.id),
                    actor=principal.name,
                )
        except IntegrityError as exc:
            raise ApiError(
                409, "dataset_exists", f"a dataset with slug {body.slug!r} already exists"
            ) from exc
        return DatasetOut.model_validate(dataset, from_attributes=True)

    async def _dataset(self, session: AsyncSession, slug: str) -> Dataset:
        dataset = self._datasets.get(slug) or await repo.dataset_by_slug(session, slug)
        if dataset is None:
            raise ApiError(404, "dataset_not_found", f"no dataset with slug {slug!r}")
        if len(self._datasets) < 10_000:
            self._datasets[slug] = dataset
        return dataset

    async def get_dataset(self, slug: str) -> DatasetOut:
        """A dataset by slug."""
        async with self.sessions() as session:
            return DatasetOut.model_validate(
                await self._dataset(session, slug), from_attributes=True
            )

    async def list_datasets(self, limit: int, cursor: str | None) -> DatasetPage:
        """A page of datasets."""
        after = repo.Cursor.decode(cursor) if cursor else None
        async with self.sessions() as session:
            rows = await repo.list_datasets(session, limit + 1, after)
        items = [DatasetOut.model_validate(d, from_attributes=True) for d in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = repo.Cursor(rows[limit - 1].created_at, rows[limit - 1].id).encode()
        return DatasetPage(items=items, next_cursor=next_cursor)

    # ---- uploads --------------------------------------------------------------------------

    async def upload(
        self,
        principal: Principal,
        slug: str,
        files: Sequence[IncomingFile],
        tags: list[str],
    ) -> list[AssetOut]:
        """Store and register every file of one request, or none if any file is refused."""
        async with self.sessions() as session:
            dataset = await self._dataset(session, slug)
        inspected: list[Inspected] = []
        for f in files:
            try:
                inspected.append(
                    await asyncio.to_thread(
                        inspect_chunks, _read_file(f.stream), self.settings.max_upload_bytes
                    )
                )
            except FileRejected as exc:
                raise ApiError(
                    exc.status,
                    exc.code,
                    f"{f.filename}: {exc.message}; nothing from this request was stored",
                    {"filename": f.filename},
                ) from exc
        known = await self._existing_many(dataset.id, [info.sha256 for info in inspected])
        fresh: dict[str, tuple[IncomingFile, Inspected]] = {}  # first file with those bytes
        for f, info in zip(files, inspected, strict=True):
            if info.sha256 not in known:
                fresh.setdefault(info.sha256, (f, info))
        gate = asyncio.Semaphore(4)

        async def store(f: IncomingFile, info: Inspected) -> None:
            key = content_address(info.sha256)
            async with gate:
                # Small blobs are just (re)written: cheaper than asking the store first.
                if (
                    info.size <= STAT_BEFORE_PUT_BYTES
                    or await self.store.stat(RAW_BUCKET, key) is None
                ):
                    f.stream.seek(0)
                    await self.store.put_stream(
                        RAW_BUCKET, key, f.stream, info.size, info.media_type
                    )

        await asyncio.gather(*(store(f, info) for f, info in fresh.values()))
        new = [(info, f.filename) for f, info in fresh.values()]
        created = await self._register_uploads(dataset, new, principal.name, tags)
        results = []
        for info in inspected:
            if info.sha256 in known:
                results.append(asset_out(known[info.sha256], dataset.slug, duplicate=True))
            else:
                out = created[info.sha256]
                first = fresh[info.sha256][1] is info  # a repeat within the request is a copy
                results.append(out if first else out.model_copy(update={"duplicate": True}))
        return results

    async def _existing_many(self, dataset_id: uuid.UUID, hashes: list[str]) -> dict[str, Asset]:
        async with self.sessions() as session:
            return await repo.assets_by_hashes(session, dataset_id, hashes)

    async def _register_uploads(
        self,
        dataset: Dataset,
        new: list[tuple[Inspected, str]],
        uploaded_by: str,
        tags: list[str],
    ) -> dict[str, AssetOut]:
        """Register a request's new files in one transaction; by sha256."""
        if not new:
            return {}
        try:
            async with self.sessions() as session, session.begin():
                assets = [
                    self._new_asset(dataset, info, name, uploaded_by, "upload", tags)
                    for info, name in new
                ]
                session.add_all(assets)
                await session.flush()
                await add_events(session, outbox, [self._ingested(a, dataset) for a in assets])
            return {a.sha256: asset_out(a, dataset.slug) for a in assets}
        except IntegrityError:
            # Some of the bytes arrived concurrently: register one by one (each may be a copy).
            outs = {}
            for info, name in new:
                outs[info.sha256] = await self._register(
                    dataset, info, name, uploaded_by, "upload", tags, envelope=None
                )
            return outs

    async def _existing(self, dataset_id: uuid.UUID, sha256: str) -> Asset | None:
        async with self.sessions() as session:
            return await repo.asset_by_hash(session, dataset_id, sha256)

    @staticmethod
    def _new_asset(
        dataset: Dataset,
        info: Inspected,
        filename: str,
        uploaded_by: str,
        source: Literal["upload", "objectstore", "frame"],
        tags: list[str],
        location: tuple[str, str] | None = None,
        frame_of: tuple[uuid.UUID, float] | None = None,
    ) -> Asset:
        bucket, object_key = location or (RAW_BUCKET, content_address(info.sha256))
        return Asset(
            id=uuid.uuid4(),
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

    @staticmethod
    def _ingested(asset: Asset, dataset: Dataset) -> Staged:
        """The ``asset.ingested`` event of a new asset."""
        payload = AssetIngestedV1(
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
        )
        return Staged(ASSET_INGESTED, payload, SOURCE, str(asset.id), actor=asset.uploaded_by)

    async def _register(
        self,
        dataset: Dataset,
        info: Inspected,
        filename: str,
        uploaded_by: str,
        source: Literal["upload", "objectstore", "frame"],
        tags: list[str],
        envelope: Envelope | None,
        location: tuple[str, str] | None = None,
        frame_of: tuple[uuid.UUID, float] | None = None,
    ) -> AssetOut:
        """Insert the asset and its ``asset.ingested`` event in one transaction."""
        try:
            async with self.sessions() as session, session.begin():
                if envelope is not None and not await claim(
                    session, inbox, envelope.id, self.settings.consumer_group
                ):
                    raise _AlreadyApplied
                asset = self._new_asset(
                    dataset, info, filename, uploaded_by, source, tags, location, frame_of
                )
                session.add(asset)
                await session.flush()
                await add_events(session, outbox, [self._ingested(asset, dataset)])
            return asset_out(asset, dataset.slug)
        except IntegrityError:
            # The same bytes arrived concurrently and the other request won the unique index.
            existing = await self._existing(dataset.id, info.sha256)
            if existing is None:
                raise
            return asset_out(existing, dataset.slug, duplicate=True)

    # ---- object-store drops ---------------------------------------------------------------

    async def record_store_notification(self, obj: LandingObject) -> bool:
        """Put a landing-bucket creation on ``conveyor.objectstore.events``; False if ignored."""
        if obj.bucket != LANDING_BUCKET:
            return False
        event_id = uuid.uuid5(
            uuid.NAMESPACE_URL, f"s3://{obj.bucket}/{obj.key}#{obj.etag}@{obj.version}"
        )
        async with self.sessions() as session, session.begin():
            await add_event(
                session,
                outbox,
                OBJECT_CREATED,
                ObjectCreatedV1(
                    bucket=obj.bucket, key=obj.key, size_bytes=obj.size_bytes, etag=obj.etag
                ),
                source=SOURCE,
                subject=f"s3://{obj.bucket}/{obj.key}",
                actor="objectstore",
                event_id=str(event_id),
            )
        return True

    async def reconcile_landing(self) -> int:
        """Announce every object still in the landing bucket (drops missed while we were down).

        Ingested drops are removed from the bucket, so what is left is either pending or was
        refused; deterministic event ids make a second reconcile of the same object a no-op.
        """
        objects = await self.store.list_keys(LANDING_BUCKET)
        for start in range(0, len(objects), 500):
            events = [
                Staged(
                    OBJECT_CREATED,
                    ObjectCreatedV1(
                        bucket=obj.bucket,
                        key=obj.key,
                        size_bytes=obj.size,
                        etag=obj.etag,
                        detected_by="reconcile",
                    ),
                    SOURCE,
                    subject=f"s3://{obj.bucket}/{obj.key}",
                    actor="objectstore",
                    event_id=str(
                        uuid.uuid5(
                            uuid.NAMESPACE_URL, f"reconcile:s3://{obj.bucket}/{obj.key}#{obj.etag}"
                        )
                    ),
                )
                for obj in objects[start : start + 500]
            ]
            async with self.sessions() as session, session.begin():
                await add_events(session, outbox, events)
        if objects:
            log.info("reconcile: %d object(s) waiting in %s", len(objects), LANDING_BUCKET)
        return len(objects)

    def request_reconcile(self) -> None:
        """Ask for one listing of the landing bucket (a notification could not be recorded)."""
        self._reconcile_wanted.set()

    async def reconcile_when_requested(self) -> None:
        """Background task: run one reconcile per request, retrying until it succeeds."""
        while True:
            await self._reconcile_wanted.wait()
            self._reconcile_wanted.clear()
            for delay in (1, 2, 5, 10, 30, 60, 60, 60):
                try:
                    await self.reconcile_landing()
                    break
                except Exception as exc:
                    log.warning("landing reconcile failed, retrying in %s s: %s", delay, exc)
                    await asyncio.sleep(delay)

    async def ingest_landing_object(self, envelope: Envelope, obj: ObjectCreatedV1) -> None:
        """Turn a dropped object into an asset of the dataset its first folder names."""
        slug = dataset_of_landing_key(obj.key)
        async with self.sessions() as session:
            dataset = await repo.dataset_by_slug(session, slug) if slug else None
        if dataset is None:
            reason = "unknown_dataset" if slug else "missing_dataset"
            message = (
                f"no dataset with slug {slug!r}; create it, then re-drop the file"
                if slug
                else "objects must be dropped under <dataset-slug>/"
            )
            await self._reject_drop(envelope, obj, reason, message)
            return
        info = await self.store.stat(obj.bucket, obj.key)
        if info is None:
            log.info("landing object %s is gone (already ingested or deleted)", obj.key)
            return
        if info.size > self.settings.max_upload_bytes:
            await self._reject_drop(
                envelope, obj, "too_large", f"{info.size} bytes is over the upload limit"
            )
            return
        try:
            inspected = await asyncio.to_thread(
                inspect_chunks,
                self.store.iter_chunks(obj.bucket, obj.key),
                self.settings.max_upload_bytes,
            )
        except FileRejected as exc:
            reason = "too_large" if exc.status == 413 else "unsupported_media_type"
            await self._reject_drop(envelope, obj, reason, exc.message)
            return
        existing = await self._existing(dataset.id, inspected.sha256)
        if existing is None:
            key = content_address(inspected.sha256)
            if await self.store.stat(RAW_BUCKET, key) is None:
                await self.store.copy(obj.bucket, obj.key, RAW_BUCKET, key)
            filename = obj.key.rsplit("/", 1)[-1]
            try:
                await self._register(
                    dataset, inspected, filename, "objectstore", "objectstore", [], envelope
                )
            except _AlreadyApplied:
                return
        if self.settings.delete_landing_after_ingest:
            await self.store.remove(obj.bucket, obj.key)

    async def _reject_drop(
        self, envelope: Envelope, obj: ObjectCreatedV1, reason: str, message: str
    ) -> None:
        log.warning("drop %s/%s refused: %s", obj.bucket, obj.key, message)
        async with self.sessions() as session, session.begin():
            if not await claim(session, inbox, envelope.id, self.settings.consumer_group):
                return
            await add_event(
                session,
                outbox,
                DROP_REJECTED,
                DropRejectedV1(bucket=obj.bucket, key=obj.key, reason=reason, message=message),
                source=SOURCE,
                subject=f"s3://{obj.bucket}/{obj.key}",
                actor="objectstore",
            )

    # ---- video frames ---------------------------------------------------------------------

    async def register_frame(self, envelope: Envelope, frame: FrameSampledV1) -> None:
        """Make a frame the clean service sampled from a video an image asset of its dataset."""
        async with self.sessions() as session:
            dataset = await repo.dataset_by_slug(session, frame.dataset_slug)
        if dataset is None:
            raise LookupError(f"frame of a video in unknown dataset {frame.dataset_slug!r}")
        if await self._existing(dataset.id, frame.sha256) is not None:
            return  # the same picture is already an asset of the dataset
        info = Inspected("image/jpeg", frame.size_bytes, frame.sha256)
        name = f"frame-{frame.frame_index:06d}-{frame.frame_time_seconds:.3f}s.jpg"
        with contextlib.suppress(_AlreadyApplied):
            await self._register(
                dataset,
                info,
                name,
                "clean",
                "frame",
                [],
                envelope,
                location=(frame.bucket, frame.object_key),
                frame_of=(frame.video_asset_id, frame.frame_time_seconds),
            )

    # ---- assets ---------------------------------------------------------------------------

    async def get_asset(self, asset_id: uuid.UUID) -> AssetDetail:
        """An asset with a fresh download URL."""
        async with self.sessions() as session:
            row = await repo.asset_with_dataset(session, asset_id)
        if row is None:
            raise ApiError(404, "asset_not_found", f"no asset {asset_id}")
        asset, slug = row
        ttl = timedelta(seconds=self.settings.download_url_ttl_seconds)
        return AssetDetail(
            **asset_out(asset, slug).model_dump(),
            download_url=self.store.presigned_get(asset.bucket, asset.object_key, ttl),
            download_url_expires_at=datetime.now(UTC) + ttl,
        )

    async def list_assets(
        self,
        slug: str,
        *,
        limit: int,
        cursor: str | None,
        media_type: str | None,
        source: str | None,
        tag: str | None,
        sha256: str | None,
    ) -> AssetPage:
        """A page of a dataset's assets."""
        after = repo.Cursor.decode(cursor) if cursor else None
        async with self.sessions() as session:
            dataset = await self._dataset(session, slug)
            rows = await repo.list_assets(
                session,
                dataset.id,
                limit=limit + 1,
                after=after,
                media_type=media_type,
                source=source,
                tag=tag,
                sha256=sha256,
            )
        items = [asset_out(a, slug) for a in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = repo.Cursor(rows[limit - 1].created_at, rows[limit - 1].id).encode()
        return AssetPage(items=items, next_cursor=next_cursor)

    async def lookup_hashes(self, slug: str, hashes: list[str]) -> dict[str, uuid.UUID]:
        """Which of these hashes the dataset already has."""
        async with self.sessions() as session:
            dataset = await self._dataset(session, slug)
            return await repo.known_hashes(session, dataset.id, hashes)

    # ---- API keys -------------------------------------------------------------------------

    async def create_api_key(self, principal: Principal, body: ApiKeyCreate) -> ApiKeyCreated:
        """Issue a key; the plain key is returned once and only its hash is kept."""
        key = generate_api_key()
        async with self.sessions() as session, session.begin():
            record = ApiKey(
                id=uuid.uuid4(),
                name=body.name,
                role=body.role.value,
                key_hash=hash_api_key(key),
                created_by=principal.name,
            )
            session.add(record)
            await session.flush()
            await session.refresh(record)
            await add_event(
                session,
                outbox,
                API_KEY_CREATED,
                ApiKeyCreatedV1(
                    key_id=record.id,
                    name=body.name,
                    role=body.role.value,
                    created_by=principal.name,
                ),
                source=SOURCE,
                subject=str(record.id),
                actor=principal.name,
            )
        return ApiKeyCreated(
            id=record.id,
            name=record.name,
            role=Role(record.role),
            created_at=record.created_at,
            revoked_at=None,
            key=key,
        )

    async def list_api_keys(self) -> list[ApiKeyOut]:
        """Every key's metadata."""
        async with self.sessions() as session:
            return [
                ApiKeyOut(
                    id=k.id,
                    name=k.name,
                    role=Role(k.role),
                    created_at=k.created_at,
                    revoked_at=k.revoked_at,
                )
                for k in await repo.list_api_keys(session)
            ]

    async def revoke_api_key(self, principal: Principal, key_id: uuid.UUID) -> None:
        """Revoke a key; 404 if unknown or already revoked."""
        async with self.sessions() as session, session.begin():
            if not await repo.revoke_api_key(session, key_id, datetime.now(UTC)):
                raise ApiError(404, "api_key_not_found", f"no active API key {key_id}")
            await add_event(
                session,
                outbox,
                API_KEY_REVOKED,
                ApiKeyRevokedV1(key_id=key_id, revoked_by=principal.name),
                source=SOURCE,
                subject=str(key_id),
                actor=principal.name,
            )

    async def resolve(self, key: str) -> Principal | None:
        """The principal of a stored key (the ingest side of :mod:`shared.auth`)."""
        async with self.sessions() as session:
            record = await repo.api_key_by_hash(session, hash_api_key(key))
        if record is None:
            return None
        return Principal(key_id=str(record.id), name=record.name, role=Role(record.role))


class _AlreadyApplied(Exception):
    """The event's effects were committed by an earlier delivery."""
