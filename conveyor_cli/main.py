"""The ``conveyor`` command line: upload, datasets, assets, quality, audit and API-key commands.

Exit codes: 0 success, 1 a request or file failed (or the audit chain is broken),
2 usage error (bad option, missing API key, unknown dataset for ``upload``).
"""

import asyncio
import contextlib
import functools
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, Self, TypeVar

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from conveyor_cli import __version__
from conveyor_cli.client import (
    DEFAULT_AUDIT_URL,
    DEFAULT_CLEAN_URL,
    DEFAULT_INGEST_URL,
    ApiError,
    AsyncIngestClient,
    AuditClient,
    CleanClient,
    ConveyorError,
    IngestClient,
    collect_pages,
)
from conveyor_cli.output import Output, human_bytes
from conveyor_cli.quality import (
    STDIN,
    PolicyInputError,
    build_rules,
    load_policy_file,
    render_duplicates,
    render_policy,
    render_reevaluation,
    render_report,
    render_summary,
)
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

P = ParamSpec("P")
R = TypeVar("R")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
# How many skipped paths the table lists before summarising the rest (--json lists all).
SKIPPED_SHOWN = 20
# Page size used while following cursors; the server may cap it lower, which is fine.
PAGE_SIZE = 100
# Retry policy for uploads (module-level so tests can shorten the backoff).
UPLOAD_RETRY = RetryPolicy()

MAIN_HELP = """\
Command-line client for **Conveyor**, the data-ops platform for computer-vision datasets.

Uploads images and videos into datasets on the ingest service, browses datasets and
assets, shows the clean service's quality reports, duplicates and cleaning policies,
manages API keys, and inspects or verifies the audit service's hash-chained log.

Every command needs an API key: pass `--api-key` or set `CONVEYOR_API_KEY`. Results go
to stdout (tables, or raw JSON with `--json`); progress and errors go to stderr.
Exit codes: 0 ok, 1 something failed, 2 usage error.

**Examples:**

```
export CONVEYOR_API_KEY=cvk_...
conveyor upload ./photos --dataset cars --create-dataset --tag batch-7
conveyor --json datasets list
conveyor --ingest-url https://ingest.example.com assets list --dataset cars --limit 20
conveyor quality summary --dataset cars
conveyor audit verify
```
"""


class UsageProblem(Exception):
    """A mistake in how the CLI was invoked; reported on one line with exit code 2."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Global options, shared by every command through the click context."""

    ingest_url: str
    audit_url: str
    clean_url: str
    api_key: str | None
    as_json: bool

    @property
    def output(self) -> Output:
        """A fresh :class:`Output` bound to the current stdout/stderr."""
        return Output(as_json=self.as_json)

    def key(self) -> str:
        """The API key, or a usage error naming both ways to provide it."""
        if not self.api_key:
            raise UsageProblem(
                "missing API key: pass --api-key KEY or set the CONVEYOR_API_KEY environment"
                " variable"
            )
        return self.api_key

    def ingest(self) -> IngestClient:
        """A synchronous ingest client (raises UsageProblem without an API key)."""
        return IngestClient(self.ingest_url, self.key())

    def audit(self) -> AuditClient:
        """A synchronous audit client (raises UsageProblem without an API key)."""
        return AuditClient(self.audit_url, self.key())

    def clean(self) -> CleanClient:
        """A synchronous clean client (raises UsageProblem without an API key)."""
        return CleanClient(self.clean_url, self.key())


def _settings(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    if not isinstance(obj, Settings):  # only when a command is invoked without the callback
        raise UsageProblem("internal: global options were not parsed")
    return obj


def _show_record(settings: Settings, value: Any, title: str) -> None:
    """One object: raw JSON with --json, else a field/value table."""
    if settings.as_json:
        settings.output.json(value)
    else:
        settings.output.record(value, title=title)


def _fail(out: Output, message: str, code: int) -> NoReturn:
    out.error(message)
    raise typer.Exit(code)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn expected failures into one ``error: ...`` line and an exit code (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except UsageProblem as exc:
            _fail(Output(as_json=False), str(exc), EXIT_USAGE)
        except ConveyorError as exc:
            out = Output(as_json=False)
            out.error(exc.one_line())
            for line in exc.explanation():
                out.note(f"  {line}")
            raise typer.Exit(EXIT_FAILED) from None

    return wrapper


def _iso_time(value: str | None, option: str) -> str | None:
    """Validate an ISO 8601 timestamp early so a typo is a usage error, not a server 422."""
    if value is None:
        return None
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise UsageProblem(
            f"{option} must be an ISO 8601 time such as 2026-01-31 or 2026-01-31T12:00:00Z,"
            f" got {value!r}"
        ) from None
    return value


def _check_url(value: str) -> str:
    """Reject URLs httpx cannot use, as a usage error instead of a confusing network error."""
    if not value.startswith(("http://", "https://")):
        raise typer.BadParameter(f"must start with http:// or https://, got {value!r}")
    return value


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"conveyor {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="conveyor",
    help=MAIN_HELP,
    no_args_is_help=True,
    # Markdown: paragraphs are re-flowed to the terminal and examples stay code blocks.
    rich_markup_mode="markdown",
    # Locals in a traceback could include the API key; never print them.
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    ingest_url: Annotated[
        str,
        typer.Option(
            "--ingest-url",
            callback=_check_url,
            envvar="CONVEYOR_INGEST_URL",
            help="Base URL of the ingest service (datasets, assets, API keys).",
            metavar="URL",
        ),
    ] = DEFAULT_INGEST_URL,
    audit_url: Annotated[
        str,
        typer.Option(
            "--audit-url",
            callback=_check_url,
            envvar="CONVEYOR_AUDIT_URL",
            help="Base URL of the audit service (audit history, verify, export).",
            metavar="URL",
        ),
    ] = DEFAULT_AUDIT_URL,
    clean_url: Annotated[
        str,
        typer.Option(
            "--clean-url",
            callback=_check_url,
            envvar="CONVEYOR_CLEAN_URL",
            help="Base URL of the clean service (quality reports, duplicates, policies).",
            metavar="URL",
        ),
    ] = DEFAULT_CLEAN_URL,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="CONVEYOR_API_KEY",
            help="API key sent as the X-API-Key header. Required by every command; prefer"
            " the environment variable so the key stays out of shell history.",
            metavar="KEY",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the raw JSON answers (or a JSON summary for upload) instead of tables.",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Print the CLI version and exit.",
        ),
    ] = False,
) -> None:
    """Global options; they go before the command name."""
    ctx.obj = Settings(
        ingest_url=ingest_url,
        audit_url=audit_url,
        clean_url=clean_url,
        api_key=api_key,
        as_json=as_json,
    )


# =========================================================================== upload


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


@app.command()
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
    settings = _settings(ctx)
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
    if settings.as_json:
        out.json(summary.to_json())
    else:
        summary.render(out)
    raise typer.Exit(EXIT_FAILED if summary.failed else EXIT_OK)


# =========================================================================== datasets

datasets_app = typer.Typer(
    help="Create, list and inspect datasets.\n\n"
    "**Examples:**\n\n```\n"
    "conveyor datasets create cars --name 'Cars'\n"
    "conveyor datasets list --limit 200\n"
    "conveyor datasets get cars\n```\n",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(datasets_app, name="datasets")


@datasets_app.command("list")
@handle_errors
def datasets_list(
    ctx: typer.Context,
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", min=1, help="Maximum number of datasets to show."),
    ] = 50,
) -> None:
    """List datasets (following pagination up to --limit).

    **Example:**

    ```
    conveyor datasets list --limit 200
    ```
    """
    settings = _settings(ctx)
    with settings.ingest() as ingest:
        page = collect_pages(
            lambda n, cursor: ingest.list_datasets(limit=n, cursor=cursor), limit, PAGE_SIZE
        )
    out = settings.output
    if settings.as_json:
        out.json(page)
        return
    out.table(
        ("slug", "name", "id", "created_by", "created_at"),
        (
            (d["slug"], d["name"], d["id"], d.get("created_by"), d.get("created_at"))
            for d in page["items"]
        ),
        title="Datasets",
    )
    if page["next_cursor"]:
        out.note(f"more datasets exist; raise --limit to see more than {limit}")


@datasets_app.command("create")
@handle_errors
def datasets_create(
    ctx: typer.Context,
    slug: Annotated[
        str,
        typer.Argument(
            metavar="SLUG", help="URL-safe identifier, e.g. 'cars'.", show_default=False
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option("--name", help="Human-readable name (defaults to the slug).", metavar="NAME"),
    ] = None,
) -> None:
    """Create a dataset. Fails with dataset_exists if the slug is taken.

    **Example:**

    ```
    conveyor datasets create cars --name "Cars and vans"
    ```
    """
    settings = _settings(ctx)
    with settings.ingest() as ingest:
        created = ingest.create_dataset(slug, name or slug)
    _show_record(settings, created, f"Created dataset {slug}")


@datasets_app.command("get")
@handle_errors
def datasets_get(
    ctx: typer.Context,
    slug: Annotated[str, typer.Argument(metavar="SLUG", help="Dataset slug.", show_default=False)],
) -> None:
    """Show one dataset.

    **Example:**

    ```
    conveyor datasets get cars
    ```
    """
    settings = _settings(ctx)
    with settings.ingest() as ingest:
        found = ingest.get_dataset(slug)
    _show_record(settings, found, f"Dataset {slug}")


# =========================================================================== assets

assets_app = typer.Typer(
    help="List and inspect the assets (stored images/videos) of datasets.\n\n"
    "**Examples:**\n\n```\n"
    "conveyor assets list --dataset cars --media-type image/jpeg --tag night\n"
    "conveyor assets get 7f0c2a9e-5b1d-4c1e-9d7a-0a4c2b9f1e11\n```\n",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(assets_app, name="assets")


@assets_app.command("list")
@handle_errors
def assets_list(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset slug.", metavar="SLUG")],
    media_type: Annotated[
        str | None,
        typer.Option("--media-type", help="Only this media type, e.g. image/png.", metavar="TYPE"),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option("--source", help="Only assets from this source (e.g. upload).", metavar="SRC"),
    ] = None,
    tag: Annotated[
        str | None, typer.Option("--tag", help="Only assets carrying this tag.", metavar="TAG")
    ] = None,
    limit: Annotated[
        int,
        typer.Option(
            "--limit", "-n", min=1, help="Maximum number of assets (cursors are followed)."
        ),
    ] = 100,
) -> None:
    """List a dataset's assets, optionally filtered, following cursors up to --limit.

    **Example:**

    ```
    conveyor assets list --dataset cars --tag night --limit 500
    ```
    """
    settings = _settings(ctx)
    with settings.ingest() as ingest:
        page = collect_pages(
            lambda n, cursor: ingest.list_assets(
                dataset, limit=n, cursor=cursor, media_type=media_type, source=source, tag=tag
            ),
            limit,
            PAGE_SIZE,
        )
    out = settings.output
    if settings.as_json:
        out.json(page)
        return
    out.table(
        ("id", "filename", "media_type", "size", "tags", "created_at"),
        (
            (
                a["id"],
                a["filename"],
                a["media_type"],
                human_bytes(a["size_bytes"]),
                a.get("tags"),
                a.get("created_at"),
            )
            for a in page["items"]
        ),
        title=f"Assets of {dataset}",
    )
    if page["next_cursor"]:
        out.note(f"more assets exist; raise --limit to see more than {limit}")


@assets_app.command("get")
@handle_errors
def assets_get(
    ctx: typer.Context,
    asset_id: Annotated[str, typer.Argument(metavar="ID", help="Asset id.", show_default=False)],
) -> None:
    """Show one asset, including a temporary download URL.

    **Example:**

    ```
    conveyor assets get 7f0c2a9e-5b1d-4c1e-9d7a-0a4c2b9f1e11
    ```
    """
    settings = _settings(ctx)
    with settings.ingest() as ingest:
        asset = ingest.get_asset(asset_id)
    _show_record(settings, asset, f"Asset {asset_id}")


# =========================================================================== quality

quality_app = typer.Typer(
    help="Quality reports, duplicate groups and cleaning policies from the clean service.\n\n"
    "Clean checks every ingested asset shortly after upload (corruption, blur, exposure,"
    " size, duplicates, ...) and judges the findings against the dataset's policy: each"
    " failed check rejects the asset, only flags it, or is ignored.\n\n"
    "**Examples:**\n\n```\n"
    "conveyor quality report 7f0c2a9e-5b1d-4c1e-9d7a-0a4c2b9f1e11\n"
    "conveyor quality summary --dataset cars\n"
    "conveyor quality duplicates --dataset cars\n"
    "conveyor quality policy get --dataset cars\n"
    "conveyor quality policy set --dataset cars --action blurry=flag\n```\n",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(quality_app, name="quality")

_UNKNOWN_DATASET_HINT = (
    "clean knows a dataset once ingest has announced it: check the slug with"
    " 'conveyor datasets list' (a dataset created a moment ago may take a second to appear)"
)


@contextlib.contextmanager
def _clean_hints(settings: Settings, hints: Mapping[str, str]) -> Iterator[None]:
    """Attach the hint for the error's code (if any) to an ApiError on its way out."""
    try:
        yield
    except ApiError as exc:
        if exc.status == 404 and exc.code in ("not_found", "http_404"):
            # The route itself is missing: the URL is probably not the clean service.
            exc.hint = f"is --clean-url ({settings.clean_url}) the clean service?"
        exc.hint = exc.hint or hints.get(exc.code)
        raise


def _asset_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise UsageProblem(
            f"ASSET_ID must be an asset id (a UUID such as 7f0c2a9e-5b1d-4c1e-9d7a-0a4c2b9f1e11),"
            f" got {value!r}"
        ) from None


def _missing_report_hint(settings: Settings, asset_id: str) -> str:
    """Tell "unknown asset" from "not judged yet" by asking ingest whether the asset exists."""
    try:
        with settings.ingest() as ingest:
            asset = ingest.get_asset(asset_id)
    except ApiError as exc:
        if exc.status == 404:
            return "ingest has no asset with this id either: check the id"
        return "the id is unknown, or the asset is still being checked: retry in a few seconds"
    except ConveyorError:
        return "the id is unknown, or the asset is still being checked: retry in a few seconds"
    return (
        f"the asset exists (dataset {asset['dataset_slug']}, uploaded {asset['created_at']}) but"
        " has no verdict yet: clean checks assets moments after upload, so retry in a few"
        " seconds (if it stays missing, see the clean service's log)"
    )


_DATASET_OPTION = typer.Option("--dataset", "-d", help="Dataset slug.", metavar="SLUG")


@quality_app.command("report")
@handle_errors
def quality_report(
    ctx: typer.Context,
    asset_id: Annotated[
        str, typer.Argument(metavar="ASSET_ID", help="Asset id (a UUID).", show_default=False)
    ],
) -> None:
    """Show an asset's quality report: verdict, every finding with its value and threshold,
    duplicate info and the measured metrics.

    Findings with effect *reject* are why the asset was rejected; *flag* findings do not
    block it. A 404 means clean has no report (yet); the CLI then asks ingest whether the
    asset exists, to say which.

    **Example:**

    ```
    conveyor quality report 7f0c2a9e-5b1d-4c1e-9d7a-0a4c2b9f1e11
    ```
    """
    settings = _settings(ctx)
    asset_id = _asset_id(asset_id)
    try:
        with settings.clean() as clean, _clean_hints(settings, {}):
            report = clean.quality_report(asset_id)
    except ApiError as exc:
        if exc.code == "report_not_found":
            exc.hint = _missing_report_hint(settings, asset_id)
        raise
    out = settings.output
    if settings.as_json:
        out.json(report)
    else:
        render_report(out, report)


_View = TypeVar("_View")


def _show_dataset_view(
    ctx: typer.Context,
    dataset: str,
    fetch: Callable[[CleanClient, str], _View],
    render: Callable[[Output, _View], None],
) -> None:
    """Fetch one of clean's views of a dataset and show it (raw JSON with ``--json``)."""
    settings = _settings(ctx)
    with (
        settings.clean() as clean,
        _clean_hints(settings, {"dataset_not_found": _UNKNOWN_DATASET_HINT}),
    ):
        view = fetch(clean, dataset)
    if settings.as_json:
        settings.output.json(view)
    else:
        render(settings.output, view)


@quality_app.command("summary")
@handle_errors
def quality_summary(ctx: typer.Context, dataset: Annotated[str, _DATASET_OPTION]) -> None:
    """Show a dataset's quality at a glance: cleaned/rejected counts, how often each issue
    rejected or flagged an asset, and percentiles (min, p05, p50, p95, max) of every metric.

    **Example:**

    ```
    conveyor quality summary --dataset cars
    ```
    """
    _show_dataset_view(ctx, dataset, CleanClient.quality_summary, render_summary)


@quality_app.command("duplicates")
@handle_errors
def quality_duplicates(ctx: typer.Context, dataset: Annotated[str, _DATASET_OPTION]) -> None:
    """List a dataset's duplicate groups: each original (the first to arrive, kept) with its
    later copies, whether each is an exact or near duplicate, and the pHash distance.

    **Example:**

    ```
    conveyor quality duplicates --dataset cars
    ```
    """
    _show_dataset_view(ctx, dataset, CleanClient.duplicates, render_duplicates)


policy_app = typer.Typer(
    help="Show or replace a dataset's cleaning policy (per check: reject, flag or ignore, and"
    " its threshold).\n\n"
    "**Examples:**\n\n```\n"
    "conveyor quality policy get --dataset cars\n"
    "conveyor quality policy set --dataset cars --file policy.json\n```\n",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
quality_app.add_typer(policy_app, name="policy")


@policy_app.command("get")
@handle_errors
def policy_get(ctx: typer.Context, dataset: Annotated[str, _DATASET_OPTION]) -> None:
    """Show a dataset's effective policy: every check, its action, and for measured checks
    the metric, the direction that fails, the threshold and the default threshold.

    **Example:**

    ```
    conveyor quality policy get --dataset cars
    ```
    """
    _show_dataset_view(ctx, dataset, CleanClient.get_policy, render_policy)


@policy_app.command("set")
@handle_errors
def policy_set(
    ctx: typer.Context,
    dataset: Annotated[str, _DATASET_OPTION],
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            "-f",
            help='JSON policy: {"actions": {CODE: "reject"|"flag"|"ignore"}, "thresholds":'
            ' {CODE: number}, "near_duplicate_radius": N}, every key optional; - reads stdin.',
            metavar="FILE",
            show_default=False,
        ),
    ] = None,
    action: Annotated[
        list[str] | None,
        typer.Option(
            "--action",
            help="CODE=reject|flag|ignore, e.g. blurry=flag; repeat for several checks."
            " Applied on top of --file.",
            metavar="CODE=ACTION",
            show_default=False,
        ),
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold",
            help="CODE=NUMBER, e.g. blurry=0.3; repeat for several checks. Applied on top of"
            " --file.",
            metavar="CODE=NUMBER",
            show_default=False,
        ),
    ] = None,
    near_duplicate_radius: Annotated[
        int | None,
        typer.Option(
            "--near-duplicate-radius",
            min=0,
            help="Largest pHash distance that counts as a near duplicate.",
            metavar="N",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Replace a dataset's cleaning policy (admin key) and re-judge its assets.

    The new policy is exactly what `--file` and the options give: **checks not mentioned go
    back to their defaults**, so include every change you want to keep (`policy get` shows
    the current actions and thresholds). Existing assets are re-judged from their stored
    metrics (nothing is downloaded again); the answer says how many changed verdict. A policy
    the service refuses (unknown check code, bad action or threshold) is reported field by
    field and changes nothing.

    **Examples:**

    ```
    conveyor quality policy set --dataset cars --file policy.json
    conveyor quality policy set --dataset cars --action blurry=flag --threshold dark=30
    echo '{}' | conveyor quality policy set --dataset cars --file -   # all defaults
    ```
    """
    settings = _settings(ctx)
    settings.key()  # a missing key is reported before the file is read
    actions, thresholds = list(action or []), list(threshold or [])
    if file is None and not actions and not thresholds and near_duplicate_radius is None:
        raise UsageProblem(
            "nothing to set: give --file FILE and/or --action CODE=ACTION,"
            " --threshold CODE=NUMBER, --near-duplicate-radius N"
        )
    try:
        base = load_policy_file(file) if file is not None else None
        rules = build_rules(
            base,
            actions=actions,
            thresholds=thresholds,
            near_duplicate_radius=near_duplicate_radius,
        )
    except PolicyInputError as exc:
        raise UsageProblem(str(exc)) from None
    source = "stdin" if file == STDIN else file
    hints = {
        "dataset_not_found": _UNKNOWN_DATASET_HINT,
        "validation_error": "the policy was not changed; 'conveyor quality policy get"
        f" --dataset {dataset}' lists the check codes"
        + (f" (policy read from {source})" if source else ""),
    }
    with settings.clean() as clean, _clean_hints(settings, hints):
        result = clean.set_policy(dataset, rules)
    out = settings.output
    if settings.as_json:
        out.json(result)
    else:
        render_reevaluation(out, dataset, result)


# =========================================================================== audit

audit_app = typer.Typer(
    help="Inspect, verify and export the hash-chained audit log.\n\n"
    "**Examples:**\n\n```\n"
    "conveyor audit history 7f0c2a9e-5b1d-4c1e-9d7a-0a4c2b9f1e11\n"
    "conveyor audit records --actor alice --since 2026-01-01\n"
    "conveyor audit verify\n"
    "conveyor audit export --since 2026-01-01 -o audit.ndjson\n```\n",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(audit_app, name="audit")

_RECORD_COLUMNS = ("seq", "time", "type", "subject", "actor", "service", "event_id")


def _record_row(r: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(r.get(c) for c in _RECORD_COLUMNS)


@audit_app.command("history")
@handle_errors
def audit_history(
    ctx: typer.Context,
    asset_id: Annotated[
        str, typer.Argument(metavar="ASSET_ID", help="Asset id.", show_default=False)
    ],
) -> None:
    """Show the audit timeline of one asset (every recorded event, oldest first).

    **Example:**

    ```
    conveyor audit history 7f0c2a9e-5b1d-4c1e-9d7a-0a4c2b9f1e11
    ```
    """
    settings = _settings(ctx)
    with settings.audit() as audit:
        timeline = audit.asset_timeline(asset_id)
    out = settings.output
    if settings.as_json:
        out.json(timeline)
        return
    out.table(
        _RECORD_COLUMNS,
        (_record_row(dict(r)) for r in timeline["items"]),
        title=f"Audit history of asset {asset_id}",
        empty="no audit records",
    )


@audit_app.command("records")
@handle_errors
def audit_records(
    ctx: typer.Context,
    subject: Annotated[
        str | None, typer.Option("--subject", help="Only this subject.", metavar="SUBJECT")
    ] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Only this actor.", metavar="ACTOR")
    ] = None,
    type_: Annotated[
        str | None, typer.Option("--type", help="Only this event type.", metavar="TYPE")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="ISO 8601 start time.", metavar="TIME")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="ISO 8601 end time.", metavar="TIME")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="Maximum number of records.")
    ] = 100,
) -> None:
    """Search audit records by subject, actor, type and time range.

    **Example:**

    ```
    conveyor audit records --actor alice --type asset.uploaded --since 2026-01-01
    ```
    """
    settings = _settings(ctx)
    since = _iso_time(since, "--since")
    until = _iso_time(until, "--until")
    with settings.audit() as audit:
        page = collect_pages(
            lambda n, cursor: audit.list_records(
                subject=subject,
                actor=actor,
                type=type_,
                since=since,
                until=until,
                limit=n,
                cursor=cursor,
            ),
            limit,
            PAGE_SIZE,
        )
    out = settings.output
    if settings.as_json:
        out.json(page)
        return
    out.table(
        _RECORD_COLUMNS,
        (_record_row(dict(r)) for r in page["items"]),
        title="Audit records",
        empty="no matching records",
    )


@audit_app.command("verify")
@handle_errors
def audit_verify(ctx: typer.Context) -> None:
    """Ask the audit service to re-verify the whole hash chain.

    Exit code 0 when the chain is intact, 1 when it is broken (the first broken record is
    printed).

    **Example:**

    ```
    conveyor audit verify || page-oncall "audit chain broken"
    ```
    """
    settings = _settings(ctx)
    with settings.audit() as audit:
        verdict = audit.verify()
    out = settings.output
    broken = verdict.get("first_broken")
    if settings.as_json:
        out.json(verdict)
    elif verdict.get("ok"):
        out.line(f"audit log OK: {verdict.get('records_checked', 0)} records checked")
    else:
        out.line(f"audit log BROKEN after checking {verdict.get('records_checked', 0)} records")
        if broken:
            out.record(broken, title="First broken record")
    if not verdict.get("ok"):
        raise typer.Exit(EXIT_FAILED)


@contextlib.contextmanager
def _atomic_output(target: Path) -> Iterator[Any]:
    """Write to ``target.part`` and rename on success, so a failed export leaves no file
    that looks complete."""
    part = target.with_name(target.name + ".part")
    try:
        fh = part.open("wb")
    except OSError as exc:
        raise UsageProblem(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        with fh:
            yield fh
        part.replace(target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


@audit_app.command("export")
@handle_errors
def audit_export(
    ctx: typer.Context,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="File to write (NDJSON, one record per line).",
            metavar="FILE",
            dir_okay=False,
            writable=True,
        ),
    ],
    subject: Annotated[
        str | None, typer.Option("--subject", help="Only this subject.", metavar="SUBJECT")
    ] = None,
    type_: Annotated[
        str | None, typer.Option("--type", help="Only this event type.", metavar="TYPE")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="ISO 8601 start time.", metavar="TIME")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="ISO 8601 end time.", metavar="TIME")
    ] = None,
) -> None:
    """Stream audit records to a file as NDJSON, with a running record count.

    The file is written under FILE.part and renamed when the export completes.

    **Example:**

    ```
    conveyor audit export --type asset.uploaded --since 2026-01-01 -o uploads.ndjson
    ```
    """
    settings = _settings(ctx)
    since = _iso_time(since, "--since")
    until = _iso_time(until, "--until")
    out = settings.output
    with (
        settings.audit() as audit,
        Progress(
            TextColumn("exporting"),
            TextColumn("{task.completed:.0f} records"),
            console=out.err,
            transient=True,  # the final count is printed on stdout instead
            disable=not out.err.is_terminal,
        ) as progress,
        _atomic_output(output) as sink,
    ):
        task = progress.add_task("export", total=None)
        count = audit.export(
            sink,
            subject=subject,
            type=type_,
            since=since,
            until=until,
            on_records=lambda n: progress.advance(task, n),
        )
    if settings.as_json:
        out.json({"file": str(output), "records": count})
    else:
        out.line(f"exported {count} records to {output}")


# =========================================================================== keys


class Role(StrEnum):
    """Roles an API key can have."""

    admin = "admin"
    uploader = "uploader"
    viewer = "viewer"


keys_app = typer.Typer(
    help="Manage API keys (admin only).\n\n"
    "**Examples:**\n\n```\n"
    "conveyor keys create ci-uploader --role uploader\n"
    "conveyor keys list\n"
    "conveyor keys revoke 3b8e0c1d-2f4a-4d8e-9b1c-5e6f7a8b9c0d\n```\n",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
@handle_errors
def keys_create(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Label for the key.", show_default=False)
    ],
    role: Annotated[
        Role,
        typer.Option(
            "--role",
            help="admin: everything; uploader: create datasets and upload; viewer: read only.",
        ),
    ],
) -> None:
    """Create an API key. The secret is shown only once: store it right away.

    **Example:**

    ```
    conveyor keys create ci-uploader --role uploader
    ```
    """
    settings = _settings(ctx)
    with settings.ingest() as ingest:
        created = ingest.create_api_key(name, role.value)
    out = settings.output
    if settings.as_json:
        out.json(created)
        return
    out.record(created, title=f"Created API key {name}")
    out.note("this is the only time the key is shown; store it now")


@keys_app.command("list")
@handle_errors
def keys_list(ctx: typer.Context) -> None:
    """List API keys (ids, names, roles, revocation time; never the secrets).

    **Example:**

    ```
    conveyor keys list
    ```
    """
    settings = _settings(ctx)
    with settings.ingest() as ingest:
        keys = ingest.list_api_keys()
    out = settings.output
    if settings.as_json:
        out.json({"items": keys})
        return
    out.table(
        ("id", "name", "role", "created_at", "revoked_at"),
        ((k["id"], k["name"], k["role"], k.get("created_at"), k.get("revoked_at")) for k in keys),
        title="API keys",
    )


@keys_app.command("revoke")
@handle_errors
def keys_revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(metavar="ID", help="Key id.", show_default=False)],
) -> None:
    """Revoke an API key by id; requests using it fail with 401 from then on.

    **Example:**

    ```
    conveyor keys revoke 3b8e0c1d-...
    ```
    """
    settings = _settings(ctx)
    with settings.ingest() as ingest:
        ingest.revoke_api_key(key_id)
    out = settings.output
    if settings.as_json:
        out.json({"id": key_id, "revoked": True})
    else:
        out.line(f"revoked API key {key_id}")


if __name__ == "__main__":  # pragma: no cover
    app()
