"""``conveyor upload``: find, hash, skip what the dataset has, upload the rest with progress.

The engine (discovery, hashing, the concurrent uploader) is :mod:`conveyor_cli.upload`; this
module drives it with progress bars on stderr and prints the summary.
"""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Self

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from conveyor_cli.client import ApiError, AsyncIngestClient, IngestClient
from conveyor_cli.commands.context import (
    EXIT_FAILED,
    EXIT_OK,
    Settings,
    UsageProblem,
    handle_errors,
    settings_of,
)
from conveyor_cli.output import Output, human_bytes
from conveyor_cli.upload import (
    FILES_PER_REQUEST,
    REQUEST_BYTES,
    Discovery,
    Failure,
    HashedFile,
    MissingPathError,
    RetryPolicy,
    UploadResult,
    discover,
    find_known,
    hash_files,
    upload_files,
)

# How many skipped paths the table lists before summarising the rest (--json lists all).
SKIPPED_SHOWN = 20
# Retry policy for uploads (module-level so tests can shorten the backoff).
UPLOAD_RETRY = RetryPolicy()


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


class _FileByteProgress:
    """One bar per phase: bytes drive the bar/speed/ETA, a file counter rides alongside.

    Rich's Progress is thread-safe, so hashing threads may report into it directly.
    """

    def __init__(self, out: Output, label: str, files: int, total_bytes: int) -> None:
        self._files_total = files
        self._files_done = 0
        self._lock = threading.Lock()
        self.progress = Progress(
            TextColumn("[progress.description]{task.description}"),
            TextColumn("{task.fields[files]}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=out.err,
            # Live bars only on a terminal; in logs and pipes they are noise.
            disable=not out.err.is_terminal,
        )
        self._task = self.progress.add_task(label, total=total_bytes, files=self._files_text())

    def _files_text(self) -> str:
        return f"{self._files_done}/{self._files_total} files"

    def __enter__(self) -> Self:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def add_bytes(self, n: int) -> None:
        """Advance the byte bar (negative to take back a failed attempt's bytes)."""
        self.progress.advance(self._task, n)

    def file_done(self, _item: object = None) -> None:
        """Count one more finished file, whatever its outcome."""
        with self._lock:
            self._files_done += 1
            text = self._files_text()
        self.progress.update(self._task, files=text)


def _ensure_dataset(client: IngestClient, out: Output, slug: str, create: bool) -> None:
    """Fail fast (before hashing anything) when the target dataset does not exist."""
    try:
        client.get_dataset(slug)
        return
    except ApiError as exc:
        if exc.status != 404:
            raise
    if not create:
        raise UsageProblem(
            f"dataset {slug!r} does not exist; create it with"
            f" 'conveyor datasets create {slug} --name NAME' or pass --create-dataset"
        )
    try:
        client.create_dataset(slug, slug)
        out.note(f"created dataset {slug!r}")
    except ApiError as exc:
        # Someone else created it between our check and now: that is what we wanted.
        if exc.code != "dataset_exists":
            raise


def _hash_with_progress(
    out: Output, discovery: Discovery, workers: int
) -> tuple[list[HashedFile], list[Failure]]:
    if not discovery.files:
        return [], []
    with _FileByteProgress(out, "hashing", len(discovery.files), discovery.total_bytes) as progress:
        return hash_files(
            discovery.files,
            workers=workers,
            on_bytes=progress.add_bytes,
            on_file=progress.file_done,
        )


def _upload_with_progress(
    settings: Settings,
    out: Output,
    slug: str,
    files: list[HashedFile],
    tags: list[str],
    concurrency: int,
    files_per_request: int,
    retry: RetryPolicy,
) -> UploadResult:
    if not files:
        return UploadResult()
    total = sum(f.size for f in files)
    with _FileByteProgress(out, "uploading", len(files), total) as progress:

        async def run() -> UploadResult:
            async with AsyncIngestClient(
                settings.ingest_url, settings.key(), max_connections=concurrency
            ) as client:
                return await upload_files(
                    client,
                    slug,
                    files,
                    tags=tags,
                    concurrency=concurrency,
                    files_per_request=files_per_request,
                    retry=retry,
                    on_bytes=progress.add_bytes,
                    on_done=progress.file_done,
                )

        return asyncio.run(run())


@dataclass(slots=True)
class _Summary:
    slug: str
    discovery: Discovery
    already: list[tuple[HashedFile, str]]
    result: UploadResult
    hash_failures: list[Failure]

    @property
    def failed(self) -> list[Failure]:
        return [*self.hash_failures, *self.result.failed]

    def to_json(self) -> dict[str, Any]:
        def asset_row(file: HashedFile, asset_id: str) -> dict[str, Any]:
            return {
                "path": str(file.path),
                "sha256": file.sha256,
                "size_bytes": file.size,
                "asset_id": asset_id,
            }

        return {
            "dataset": self.slug,
            "counts": {
                "discovered": len(self.discovery.files),
                "uploaded": len(self.result.uploaded),
                "duplicates": len(self.result.duplicates),
                "already_uploaded": len(self.already),
                "skipped": len(self.discovery.skipped),
                "failed": len(self.failed),
                "retries": self.result.retries,
            },
            "uploaded": [asset_row(u.file, u.asset["id"]) for u in self.result.uploaded],
            "duplicates": [asset_row(u.file, u.asset["id"]) for u in self.result.duplicates],
            "already_uploaded": [asset_row(f, a) for f, a in self.already],
            "failed": [{"path": str(f.path), "error": f.error} for f in self.failed],
            "skipped": [{"path": str(s.path), "reason": s.reason} for s in self.discovery.skipped],
            "aborted": self.result.aborted,
        }

    def render(self, out: Output) -> None:
        uploaded_bytes = sum(u.file.size for u in self.result.uploaded)
        rows = [
            ("uploaded", len(self.result.uploaded), human_bytes(uploaded_bytes)),
            ("duplicates (server already had it)", len(self.result.duplicates), ""),
            ("already uploaded (skipped)", len(self.already), ""),
            ("skipped (hidden / not a regular file)", len(self.discovery.skipped), ""),
            ("failed", len(self.failed), ""),
        ]
        out.table(("outcome", "files", "bytes"), rows, title=f"Upload to dataset {self.slug}")
        if self.failed:
            out.table(
                ("failed path", "error"),
                ((f.path, f.error) for f in self.failed),
                title="Failed",
            )
        skipped = self.discovery.skipped
        if skipped:
            shown = [(str(s.path), s.reason) for s in skipped[:SKIPPED_SHOWN]]
            if len(skipped) > SKIPPED_SHOWN:
                shown.append((f"... and {len(skipped) - SKIPPED_SHOWN} more", "see --json"))
            out.table(("skipped path", "reason"), shown, title="Skipped")
        if self.result.aborted:
            out.line(f"upload stopped early: {self.result.aborted}")


@handle_errors
def upload(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="PATH",
            help="Files and/or folders to upload. Folders are walked recursively; hidden"
            " entries (.name) and non-regular files are skipped and reported.",
            show_default=False,
        ),
    ],
    dataset: Annotated[
        str,
        typer.Option("--dataset", "-d", help="Slug of the target dataset.", metavar="SLUG"),
    ],
    tag: Annotated[
        list[str] | None,
        typer.Option(
            "--tag",
            "-t",
            help="Tag to attach to every uploaded asset; repeat for several tags.",
            metavar="TAG",
        ),
    ] = None,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            "-c",
            min=1,
            max=64,
            help="Number of upload requests in flight at once.",
        ),
    ] = 8,
    files_per_request: Annotated[
        int,
        typer.Option(
            "--files-per-request",
            min=1,
            max=64,
            help="Most files sent in one request (small files only: a request carries at"
            f" most {REQUEST_BYTES // 2**20} MiB, a bigger file goes alone). 1 sends one"
            " file per request.",
        ),
    ] = FILES_PER_REQUEST,
    create_dataset: Annotated[
        bool,
        typer.Option(
            "--create-dataset",
            help="Create the dataset (name = slug) if it does not exist, instead of failing.",
        ),
    ] = False,
) -> None:
    """Upload images/videos into a dataset, skipping content the dataset already has.

    Steps: find the files (folders recursively), hash each one (SHA-256, streamed in
    1 MiB chunks), ask the service which hashes the dataset already stores and skip
    those, then upload the rest in parallel, up to `--files-per-request` small files per
    request (16 MiB at most per request; a bigger file goes alone). Connection errors and
    502/503/504 answers retry the request (3 tries with backoff). A file the service
    refuses (413 too large, 415 unsupported type) fails alone: the other files of its
    request are sent again without it. Any other error answer fails the files of that
    request.

    Progress goes to stderr; the summary (uploaded, duplicates, already uploaded,
    skipped, failed with each path and error) goes to stdout.

    Exit code 0 if no file failed, 1 if any file failed, 2 for usage errors such as a
    missing path or an unknown dataset without `--create-dataset`.

    **Examples:**

    ```
    conveyor upload ./photos --dataset cars
    conveyor upload a.jpg b.mp4 clips/ --dataset cars --tag night --tag rain
    conveyor upload /mnt/export --dataset trucks --create-dataset --concurrency 16
    conveyor upload ./frames --dataset cars --files-per-request 16 --concurrency 4
    conveyor --json upload ./photos --dataset cars > summary.json
    ```
    """
    settings = settings_of(ctx)
    out = settings.output
    settings.key()  # fail on a missing key before touching the disk
    tags = list(tag or [])

    try:
        discovery = discover(paths)
    except MissingPathError as exc:
        raise UsageProblem(str(exc)) from None
    out.note(
        f"found {_n(len(discovery.files), 'file')} ({human_bytes(discovery.total_bytes)}),"
        f" skipped {len(discovery.skipped)}"
    )

    with settings.ingest() as ingest:
        _ensure_dataset(ingest, out, dataset, create_dataset)
        workers = max(1, min(concurrency, os.cpu_count() or 1))
        hashed, hash_failures = _hash_with_progress(out, discovery, workers)
        known = find_known(
            lambda batch: ingest.lookup_assets(dataset, batch), (f.sha256 for f in hashed)
        )

    already = [(f, known[f.sha256]) for f in hashed if f.sha256 in known]
    to_send = [f for f in hashed if f.sha256 not in known]
    if already:
        out.note(f"{_n(len(already), 'file')} already in dataset {dataset!r}; not sending them")

    result = _upload_with_progress(
        settings, out, dataset, to_send, tags, concurrency, files_per_request, UPLOAD_RETRY
    )
    summary = _Summary(dataset, discovery, already, result, hash_failures)
    if result.retries:
        out.note(f"retried {_n(result.retries, 'transient failure')}")
    out.show(summary.to_json(), summary.render)
    raise typer.Exit(EXIT_FAILED if summary.failed else EXIT_OK)
