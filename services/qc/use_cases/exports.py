"""Exports of dataset versions (COCO or YOLO, images included or linked), built in the
background into a zip in ``conveyor-exports``.

A request only queues an export; the builder loop takes it under a lease, copies the version's
items to a local spool file (a page of rows at a time), then, in a worker thread, writes the
zip to a temporary file one member at a time (COCO through two passes over the spool, images
streamed from the raw bucket in chunks, every member hashed as it is written), and uploads it
in parts. Memory is that of one image and one page of rows, plus the zip's directory (one
small record per file), however large the version. A builder that dies leaves its lease to run
out and the export is taken again; a failure is recorded with its error.

The zip is deterministic: members in path order with a fixed timestamp, the COCO ``info``
taken from the version, so a version exported twice with images included gives the same bytes
(with links, ``links.jsonl`` differs: presigned URLs carry the time they were signed).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import logging
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Literal

from services.qc.context import Qc
from services.qc.domain.exports import (
    DigestingWriter,
    ExportImage,
    ManifestEntry,
    write_coco,
    write_manifest,
    yolo_data_yaml,
    yolo_files,
)
from services.qc.repository import versions as repo
from services.qc.repository.versions import DatasetVersion, Export
from services.qc.use_cases.versions import version_not_found, visible_dataset
from shared.auth import Principal
from shared.errors import ApiError
from shared.storage import EXPORTS_BUCKET, RAW_BUCKET, ObjectStore, content_address

log = logging.getLogger(__name__)

Format = Literal["coco", "yolo"]
Images = Literal["include", "links"]

POLL_SECONDS = 1.0  # how soon a queued export is noticed
PROGRESS_SECONDS = 1.0  # how often a running build records progress and renews its lease
LEASE = timedelta(seconds=60)  # a build not heard of for this long is taken over
MAX_ATTEMPTS = 3  # builds of one export (crashes and store outages) before it fails
DOWNLOAD_TTL = timedelta(hours=1)
LINK_TTL = timedelta(days=7)  # the longest an S3 (SigV4) presigned URL may live
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # every member's timestamp: equal contents, equal bytes
MAX_ERROR = 2000
BUFFER = 256 * 1024  # bytes gathered before a zip member compresses them


@dataclass(frozen=True)
class ExportView:
    """An export as its API shows it; ``download_url`` only once it is done."""

    export: Export
    version_number: int
    download_url: str | None = None
    download_expires_at: datetime | None = None


# ------------------------------------------------------------------------------ requests


async def request_export(
    qc: Qc, principal: Principal, ref: str, number: int, fmt: Format, images: Images
) -> ExportView:
    """Queue an export of version ``number`` of the dataset; 404 if either is unknown."""
    async with qc.units.begin() as uow:
        dataset = await visible_dataset(uow.session, principal, ref)
        version = await repo.version_by_number(uow.session, dataset.id, number)
        if version is None:
            raise version_not_found(dataset.slug, number)
        export = Export(
            id=uuid.uuid4(),
            version_id=version.id,
            dataset_id=dataset.id,
            format=fmt,
            images=images,
            state="queued",
            done=0,
            total=version.item_count,
            attempts=0,
            requested_by=principal.name,
            created_at=datetime.now(UTC),
        )
        await repo.add_export(uow.session, export)
    return ExportView(export, version.number)


async def get_export(qc: Qc, principal: Principal, export_id: uuid.UUID) -> ExportView:
    """An export with its progress, and a time-limited download URL once done; 404 if the
    caller may not see it."""
    async with qc.units.read() as session:
        export = await repo.export_by_id(session, export_id)
        if export is None or not principal.sees(export.dataset_id):
            raise ApiError(404, "export_not_found", f"no export {export_id}")
        version = await repo.version_by_id(session, export.version_id)
    number = version.number if version is not None else 0
    if export.state != "done" or export.object_key is None:
        return ExportView(export, number)
    url = qc.store.presigned_get(EXPORTS_BUCKET, export.object_key, DOWNLOAD_TTL)
    return ExportView(export, number, url, datetime.now(UTC) + DOWNLOAD_TTL)


# ------------------------------------------------------------------------------ the builder


async def run_export_builder(qc: Qc) -> None:
    """Build queued exports one after another until cancelled."""
    while True:
        try:
            built = await build_next(qc)
        except Exception:
            # the database or store is away: the claim's lease runs out and it is tried again
            log.exception("export builder round failed")
            built = False
        if not built:
            await asyncio.sleep(POLL_SECONDS)


async def build_next(qc: Qc) -> bool:
    """Claim one export and build it; False when none was waiting."""
    async with qc.units.begin() as uow:
        export = await repo.claim_export(uow.session, datetime.now(UTC) + LEASE)
        if export is None:
            return False
        if export.attempts > MAX_ATTEMPTS:
            await repo.finish_export(
                uow.session,
                export.id,
                export.attempts,
                state="failed",
                error=f"gave up after {MAX_ATTEMPTS} attempts (the builder stopped each time)",
                finished_at=datetime.now(UTC),
            )
            return True
    await build_claimed(qc, export)
    return True


async def build_claimed(qc: Qc, export: Export) -> None:
    """Build a claimed export, recording the outcome (done, failed, or queued again after a
    store outage while attempts remain)."""
    try:
        values = await _build(qc, export)
    except ConnectionError as exc:
        log.warning("export %s: store or database unavailable: %s", export.id, exc)
        retry = export.attempts < MAX_ATTEMPTS
        values = {"state": "queued" if retry else "failed", "error": _error_text(exc)}
        if not retry:
            values["finished_at"] = datetime.now(UTC)
    except Exception as exc:
        log.exception("export %s failed", export.id)
        values = {"state": "failed", "error": _error_text(exc), "finished_at": datetime.now(UTC)}
    async with qc.units.begin() as uow:
        await repo.finish_export(uow.session, export.id, export.attempts, **values)


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR]


class Progress:
    """How far a build is: every pass over the version's images (spooling them, each pass of
    the zip) counts its images; ``done`` is the images of all passes, per pass."""

    def __init__(self, passes: int) -> None:
        self.passes = passes
        self.steps = 0  # bumped by the build thread, read by the event loop

    @property
    def done(self) -> int:
        return self.steps // self.passes


async def _build(qc: Qc, export: Export) -> dict[str, object]:
    async with qc.units.read() as session:
        version = await repo.version_by_id(session, export.version_id)
        if version is None:
            raise ValueError(f"version {export.version_id} does not exist")
        dataset = await repo.dataset_by_id(session, version.dataset_id)
        dataset_slug = dataset.slug if dataset is not None else str(version.dataset_id)
    with tempfile.TemporaryDirectory(prefix="conveyor-export-") as tmp:
        work = Path(tmp)
        plan = ZipPlan(
            fmt="coco" if export.format == "coco" else "yolo",
            images="include" if export.images == "include" else "links",
            classes=list(version.classes),
            info=coco_info(version, dataset_slug),
            work=work,
        )
        # spooling, then COCO's two passes or YOLO's labels, then the images or their links
        progress = Progress(passes=4 if plan.fmt == "coco" else 3)
        # a page of rows at a time, well inside the lease (renewed below, while the zip grows)
        await _spool_items(qc, version.id, plan.items_path, progress)
        build = asyncio.ensure_future(asyncio.to_thread(write_zip, plan, qc.store, progress))
        while not build.done():
            async with qc.units.begin() as uow:
                await repo.record_progress(
                    uow.session,
                    export.id,
                    export.attempts,
                    progress.done,
                    datetime.now(UTC) + LEASE,
                )
            await asyncio.wait({build}, timeout=PROGRESS_SECONDS)
        annotations = build.result()
        sha256, size = await asyncio.to_thread(_file_digest, plan.zip_path)
        key = f"{dataset_slug}/v{version.number}/{export.id}-{export.format}.zip"
        with plan.zip_path.open("rb") as stream:
            await qc.store.put_stream(EXPORTS_BUCKET, key, stream, size, "application/zip")
    return {
        "state": "done",
        "done": version.item_count,
        "object_key": key,
        "sha256": sha256,
        "size": size,
        "annotation_count": annotations,
        "error": None,
        "finished_at": datetime.now(UTC),
    }


def coco_info(version: DatasetVersion, dataset_slug: str) -> dict[str, str]:
    """The COCO ``info`` block: facts of the version only, so it never changes."""
    return {
        "description": f"{dataset_slug} version {version.number}",
        "version": str(version.number),
        "dataset": dataset_slug,
        "content_hash": version.manifest_hash,
        "date_created": version.created_at.isoformat(),
    }


async def _spool_items(qc: Qc, version_id: uuid.UUID, path: Path, progress: Progress) -> None:
    """The version's items, in file-name order, as JSON lines on local disk: the build thread
    reads them (twice for COCO) without a database connection."""
    with path.open("w", encoding="utf-8") as out:
        async with qc.units.read() as session:
            async for item in repo.items_by_file_name(session, version_id):
                out.write(json.dumps(list(item), separators=(",", ":")) + "\n")
                progress.steps += 1


def _file_digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


# ------------------------------------------------------------------------------ the zip


@dataclass(frozen=True)
class ZipPlan:
    """What one zip holds and where its build works."""

    fmt: Format
    images: Images
    classes: list[str]
    info: dict[str, str]
    work: Path

    @property
    def items_path(self) -> Path:
        return self.work / "items.jsonl"

    @property
    def zip_path(self) -> Path:
        return self.work / "export.zip"


def read_items(path: Path, progress: Progress) -> Iterator[tuple[str, ExportImage]]:
    """(sha256, image) of every spooled item, in file-name order; each one read is a step."""
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            file_name, sha256, width, height, shapes = json.loads(line)
            yield sha256, ExportImage(file_name, width, height, shapes)
            progress.steps += 1


class _Members:
    """Writes zip members in order, each hashed as written; its manifest entries go to a
    spool file so the manifest streams too."""

    def __init__(self, zf: zipfile.ZipFile, spool: IO[str]) -> None:
        self._zf = zf
        self._spool = spool
        self.count = 0

    @contextlib.contextmanager
    def member(self, path: str, *, compress: bool = True) -> Iterator[DigestingWriter]:
        info = zipfile.ZipInfo(path, date_time=ZIP_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16
        # writers hand over one record at a time: buffered, zlib gets large chunks
        with (
            self._zf.open(info, "w", force_zip64=True) as raw,
            io.BufferedWriter(raw, BUFFER) as buffered,
        ):
            writer = DigestingWriter(buffered)
            yield writer
        entry = writer.entry(path)
        self._spool.write(f"{entry.path}\t{entry.sha256}\t{entry.size}\n")
        self.count += 1

    def write(self, path: str, data: bytes) -> None:
        with self.member(path) as out:
            out.write(data)


def _spooled_entries(path: Path) -> Iterator[ManifestEntry]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            name, sha256, size = line.rstrip("\n").split("\t")
            yield ManifestEntry(name, sha256, int(size))


def write_zip(plan: ZipPlan, store: ObjectStore, progress: Progress) -> int:
    """Write the export's zip (blocking: run in a worker thread); the annotation count.

    Members go in path order (``annotations/`` or ``data.yaml``, ``images/``, ``labels/``,
    ``links.jsonl``), the order the manifest must list them in, then ``manifest.json``.
    """
    entries_path = plan.work / "manifest.tsv"
    annotations = 0

    def images() -> Iterator[ExportImage]:
        return (image for _, image in read_items(plan.items_path, progress))

    with (
        zipfile.ZipFile(plan.zip_path, "w", allowZip64=True) as zf,
        entries_path.open("w", encoding="utf-8") as spool,
    ):
        members = _Members(zf, spool)
        if plan.fmt == "coco":
            with members.member("annotations/instances.json") as out:
                annotations = write_coco(out, images, plan.classes, info=plan.info).annotations
        else:
            members.write("data.yaml", yolo_data_yaml(plan.classes).encode())
        if plan.images == "include":
            for sha256, image in read_items(plan.items_path, progress):
                _copy_image(members, store, sha256, image.file_name)
        if plan.fmt == "yolo":
            for path, content in yolo_files(images(), plan.classes):
                members.write(path, content)
                annotations += content.count(b"\n")
        if plan.images == "links":
            with members.member("links.jsonl") as out:
                for sha256, image in read_items(plan.items_path, progress):
                    url = store.presigned_get(RAW_BUCKET, content_address(sha256), LINK_TTL)
                    record = {"file_name": image.file_name, "sha256": sha256, "url": url}
                    out.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")
        spool.flush()
        with members.member("manifest.json") as out:
            write_manifest(out, _spooled_entries(entries_path))
    return annotations


def _copy_image(members: _Members, store: ObjectStore, sha256: str, file_name: str) -> None:
    """Stream one image from the raw bucket into ``images/<file_name>``, checking its bytes
    are the ones the version froze."""
    with members.member(f"images/{file_name}", compress=False) as out:
        for chunk in store.iter_chunks(RAW_BUCKET, content_address(sha256)):
            out.write(chunk)
        if out.sha256 != sha256:
            raise ValueError(f"the stored bytes of {file_name} do not match its sha256")
