"""File discovery, streamed hashing and the concurrent upload engine behind ``conveyor upload``.

Everything here is UI-free: progress is reported through plain callbacks so the engine can be
driven by a rich progress bar in the CLI and by simple counters in tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import mimetypes
import os
import random
import stat
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from conveyor_cli.client import ApiError, ServiceUnreachable, UploadPart
from conveyor_cli.schemas import Asset

CHUNK_SIZE = 1024 * 1024  # 1 MiB: hashing never holds more than this of a file in memory
LOOKUP_BATCH = 1000  # the lookup endpoint's documented maximum per request
DEFAULT_MEDIA_TYPE = "application/octet-stream"
# Small files share a request (much cheaper per file for ingest); the byte budget keeps one
# request short enough that a retry or a refusal re-sends little. Bigger files go alone.
FILES_PER_REQUEST = 8
REQUEST_BYTES = 16 * 1024 * 1024

ByteCallback = Callable[[int], None]


class MissingPathError(ValueError):
    """A path given on the command line does not exist (a usage error, not a skip)."""


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A regular file selected for upload."""

    path: Path
    size: int


@dataclass(frozen=True, slots=True)
class Skipped:
    """A path that discovery deliberately left out, with the reason shown to the user."""

    path: Path
    reason: str


@dataclass(slots=True)
class Discovery:
    """Result of :func:`discover`: files to upload (in a stable order) and what was skipped."""

    files: list[LocalFile] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        """Sum of the sizes of the discovered files."""
        return sum(f.size for f in self.files)


@dataclass(frozen=True, slots=True)
class HashedFile:
    """A discovered file together with its SHA-256 (hex) and the size that was hashed."""

    path: Path
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Failure:
    """A file that could not be hashed or uploaded, with a one-line error."""

    path: Path
    error: str


@dataclass(frozen=True, slots=True)
class Uploaded:
    """A file the service accepted, with the asset it answered."""

    file: HashedFile
    asset: Asset


# --------------------------------------------------------------------------- discovery


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "named pipe"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    return "special file"


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def discover(paths: Iterable[Path]) -> Discovery:
    """Expand files and folders into the list of regular files to upload.

    * Folders are walked recursively (iteratively, so deep trees cannot hit the recursion
      limit); entries are visited in sorted order so runs are reproducible.
    * Hidden files and folders (name starting with ``.``) inside a walked folder are skipped;
      a path named explicitly on the command line is always honoured.
    * Symlinks are followed, but every directory is entered at most once (keyed by device
      and inode), so symlink loops terminate; the same file reached twice (symlink, hard link,
      or named twice) is uploaded once.
    * Broken symlinks, unreadable folders and non-regular files (pipes, sockets, devices) are
      reported in ``skipped`` rather than failing the run.

    Raises :class:`MissingPathError` if a path given by the caller does not exist.
    """
    result = Discovery()
    seen_files: dict[tuple[int, int], Path] = {}
    seen_dirs: set[tuple[int, int]] = set()

    def add_file(path: Path, st: os.stat_result) -> None:
        key = (st.st_dev, st.st_ino)
        first = seen_files.get(key)
        if first is not None:
            result.skipped.append(Skipped(path, f"same file as {first}"))
            return
        seen_files[key] = path
        result.files.append(LocalFile(path, st.st_size))

    def classify(path: Path, st: os.stat_result, pending_dirs: list[Path]) -> None:
        if stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in seen_dirs:
                result.skipped.append(
                    Skipped(path, "directory already visited (symlink loop or duplicate)")
                )
                return
            seen_dirs.add(key)
            pending_dirs.append(path)
        elif stat.S_ISREG(st.st_mode):
            add_file(path, st)
        else:
            result.skipped.append(
                Skipped(path, f"not a regular file ({_special_kind(st.st_mode)})")
            )

    def list_folder(folder: Path) -> list[os.DirEntry[str]]:
        # The listing is materialised and the handle closed at once, so open descriptors
        # never grow with depth or with the number of files.
        try:
            with os.scandir(folder) as it:
                return sorted(it, key=lambda e: e.name)
        except OSError as exc:
            result.skipped.append(Skipped(folder, f"cannot read folder: {exc.strerror or exc}"))
            return []

    for root in paths:
        try:
            st = root.stat()  # follows symlinks: a symlink to a folder is walked
        except FileNotFoundError:
            if root.is_symlink():
                result.skipped.append(Skipped(root, "broken symlink"))
                continue
            raise MissingPathError(f"path does not exist: {root}") from None
        except OSError as exc:
            result.skipped.append(Skipped(root, f"cannot access: {exc.strerror or exc}"))
            continue
        entered: list[Path] = []
        classify(root, st, entered)
        # Depth-first, pre-order, sorted: an explicit stack of per-folder entry iterators
        # instead of recursion, so deep trees cannot hit Python's recursion limit.
        stack = [iter(listing) for listing in map(list_folder, entered)]
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                continue
            path = Path(entry.path)
            if _is_hidden(entry.name):
                result.skipped.append(Skipped(path, "hidden"))
                continue
            try:
                est = entry.stat()  # follow_symlinks=True
            except FileNotFoundError:
                reason = "broken symlink" if entry.is_symlink() else "vanished during scan"
                result.skipped.append(Skipped(path, reason))
                continue
            except OSError as exc:
                result.skipped.append(Skipped(path, f"cannot access: {exc.strerror or exc}"))
                continue
            entered.clear()
            classify(path, est, entered)
            if entered:
                stack.append(iter(list_folder(entered[0])))
    return result


# --------------------------------------------------------------------------- hashing


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def sha256_stream(
    stream: _Readable, *, chunk_size: int = CHUNK_SIZE, on_bytes: ByteCallback | None = None
) -> str:
    """Hash ``stream`` reading at most ``chunk_size`` bytes at a time; return the hex digest."""
    digest = hashlib.sha256()
    while chunk := stream.read(chunk_size):
        digest.update(chunk)
        if on_bytes is not None:
            on_bytes(len(chunk))
    return digest.hexdigest()


def sha256_file(
    path: Path, *, chunk_size: int = CHUNK_SIZE, on_bytes: ByteCallback | None = None
) -> str:
    """Stream-hash the file at ``path`` (never loading it whole) and return the hex digest."""
    # Unbuffered: each read goes straight to the OS, so memory stays at one chunk.
    with open(path, "rb", buffering=0) as fh:
        return sha256_stream(fh, chunk_size=chunk_size, on_bytes=on_bytes)


class _SizeCounter:
    __slots__ = ("n", "on_bytes")

    def __init__(self, on_bytes: ByteCallback | None) -> None:
        self.n = 0
        self.on_bytes = on_bytes

    def __call__(self, n: int) -> None:
        self.n += n
        if self.on_bytes is not None:
            self.on_bytes(n)


def hash_files(
    files: Sequence[LocalFile],
    *,
    workers: int = 4,
    chunk_size: int = CHUNK_SIZE,
    on_bytes: ByteCallback | None = None,
    on_file: Callable[[LocalFile], None] | None = None,
) -> tuple[list[HashedFile], list[Failure]]:
    """Hash ``files`` on a small thread pool (hashlib releases the GIL on large buffers).

    Order is preserved. Each worker has one file open at a time, so thousands of files never
    mean thousands of open descriptors. Unreadable files become :class:`Failure` entries.
    """

    def one(item: LocalFile) -> HashedFile | Failure:
        counter = _SizeCounter(on_bytes)
        try:
            digest = sha256_file(item.path, chunk_size=chunk_size, on_bytes=counter)
        except OSError as exc:
            return Failure(item.path, f"cannot read file: {exc.strerror or exc}")
        finally:
            if on_file is not None:
                on_file(item)
        # The size actually hashed is what will be sent, even if the file grew since stat().
        return HashedFile(item.path, counter.n, digest)

    hashed: list[HashedFile] = []
    failed: list[Failure] = []
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="hash")
    try:
        for outcome in pool.map(one, files):
            if isinstance(outcome, HashedFile):
                hashed.append(outcome)
            else:
                failed.append(outcome)
    finally:
        # On Ctrl-C, drop the queued files instead of hashing all of them before exiting.
        pool.shutdown(wait=True, cancel_futures=True)
    return hashed, failed


# --------------------------------------------------------------------------- lookup


def find_known(
    lookup: Callable[[list[str]], dict[str, str]],
    hashes: Iterable[str],
    *,
    batch_size: int = LOOKUP_BATCH,
) -> dict[str, str]:
    """Ask ``lookup`` which of ``hashes`` the dataset already stores, ≤``batch_size`` per call.

    Returns ``{sha256: asset_id}`` restricted to hashes that were actually asked about.
    """
    if not 1 <= batch_size <= LOOKUP_BATCH:
        raise ValueError(f"batch_size must be in 1..{LOOKUP_BATCH}")
    unique = list(dict.fromkeys(hashes))  # de-duplicate, keep order
    known: dict[str, str] = {}
    for start in range(0, len(unique), batch_size):
        batch = unique[start : start + batch_size]
        answer = lookup(batch)
        wanted = set(batch)
        known.update({h: a for h, a in answer.items() if h in wanted})
    return known


# --------------------------------------------------------------------------- upload


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retry with exponential backoff and jitter for transient failures."""

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0

    def delay(self, failed_attempt: int) -> float:
        """Seconds to wait after the ``failed_attempt``-th (1-based) failure."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (failed_attempt - 1))
        # Jitter spreads retries of many workers hitting the same outage.
        return ceiling * random.uniform(0.5, 1.0)


def is_transient(exc: Exception) -> bool:
    """Connection failures and 502/503/504 are retried; 4xx and other 5xx are final."""
    if isinstance(exc, ServiceUnreachable):
        return True
    return isinstance(exc, ApiError) and exc.transient


def _abort_reason(exc: Exception) -> str | None:
    """Failures that will hit every remaining file too, so the run stops early."""
    if isinstance(exc, ServiceUnreachable) and exc.connect:
        return str(exc)
    if isinstance(exc, ApiError) and (exc.status in (401, 403) or exc.code == "dataset_not_found"):
        return str(exc)
    return None


def refused_filename(exc: Exception) -> str | None:
    """The file a 4xx answer blames (``details.filename``, e.g. on 413/415), if it names one.

    The service refuses a whole multi-file request for one bad file, so this is what lets
    the engine fail that file alone and send the others again.
    """
    if isinstance(exc, ApiError) and 400 <= exc.status < 500:
        name = exc.details.get("filename")
        if isinstance(name, str):
            return name
    return None


def group_files(
    files: Sequence[HashedFile], *, max_files: int, max_bytes: int
) -> list[list[HashedFile]]:
    """Split ``files`` into consecutive request groups, keeping their order.

    A group holds at most ``max_files`` files and at most ``max_bytes`` bytes in total; a file
    bigger than ``max_bytes`` travels alone.
    """
    if max_files < 1 or max_bytes < 1:
        raise ValueError("max_files and max_bytes must be at least 1")
    groups: list[list[HashedFile]] = []
    current: list[HashedFile] = []
    current_bytes = 0
    for item in files:
        if current and (len(current) == max_files or current_bytes + item.size > max_bytes):
            groups.append(current)
            current, current_bytes = [], 0
        current.append(item)
        current_bytes += item.size
    if current:
        groups.append(current)
    return groups


def guess_media_type(path: Path) -> str:
    """Best-effort media type from the extension; the service makes the final call (415)."""
    return mimetypes.guess_type(path.name, strict=False)[0] or DEFAULT_MEDIA_TYPE


class _ProgressFile(io.FileIO):
    """A file whose reads report their size, so the bytes bar follows the upload stream."""

    def __init__(self, path: Path, on_read: ByteCallback) -> None:
        super().__init__(path, "rb")
        self._on_read = on_read

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        if data:
            self._on_read(len(data))
        return data


def _open_all(items: Sequence[HashedFile], on_read: ByteCallback) -> list[_ProgressFile | str]:
    """Open every file of a request (one thread hop for the group): a stream or an error."""
    opened: list[_ProgressFile | str] = []
    for item in items:
        try:
            opened.append(_ProgressFile(item.path, on_read))
        except OSError as exc:
            opened.append(f"cannot read file: {exc.strerror or exc}")
    return opened


class Uploader(Protocol):
    """What the engine needs from a client (:class:`AsyncIngestClient` satisfies it)."""

    def upload_assets(
        self, slug: str, *, parts: Sequence[UploadPart], tags: list[str]
    ) -> Awaitable[list[Asset]]:
        """Upload ``parts`` in one request; return the assets answered, in the same order."""
        ...


@dataclass(slots=True)
class UploadResult:
    """Outcome of :func:`upload_files`."""

    uploaded: list[Uploaded] = field(default_factory=list)
    duplicates: list[Uploaded] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    retries: int = 0  # requests sent again after a transient failure
    aborted: str | None = None


async def upload_files(
    client: Uploader,
    slug: str,
    files: Sequence[HashedFile],
    *,
    tags: Sequence[str] = (),
    concurrency: int = 8,
    files_per_request: int = FILES_PER_REQUEST,
    request_bytes: int = REQUEST_BYTES,
    retry: RetryPolicy | None = None,
    on_bytes: ByteCallback | None = None,
    on_done: Callable[[HashedFile], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> UploadResult:
    """Upload ``files`` to dataset ``slug``, small files several to a request.

    ``concurrency`` requests are in flight at once, each carrying up to ``files_per_request``
    files and ``request_bytes`` bytes (see :func:`group_files`); a short run is spread so that
    every worker gets a request. A worker opens a group's files only while sending them, so
    memory and descriptors stay bounded however many files there are.

    Transient failures retry the whole request per :class:`RetryPolicy`; other error answers
    are final. The service refuses a whole request for one bad file: when the answer names
    it, that file fails alone and the rest of the group is sent again without it. After a
    failure that would repeat for every file (bad key, missing dataset, service down) the
    remaining files are marked failed without being sent. ``on_done`` is called once per
    file, when its outcome is known.
    """
    policy = retry or RetryPolicy()
    result = UploadResult()
    tag_list = list(tags)
    # Never fewer requests than workers: a short run keeps every worker busy.
    spread = -(-len(files) // max(1, concurrency))
    per_request = max(1, min(files_per_request, spread))
    groups = group_files(files, max_files=per_request, max_bytes=request_bytes)
    pending = iter(groups)  # shared by workers; next() is atomic between awaits

    def report(n: int) -> None:
        if on_bytes is not None and n:
            on_bytes(n)

    def finish(item: HashedFile, outcome: Asset | Failure) -> None:
        if isinstance(outcome, Failure):
            # Count the file's bytes as processed so the bar still reaches the end.
            report(item.size)
            result.failed.append(outcome)
        elif outcome.get("duplicate"):
            result.duplicates.append(Uploaded(item, outcome))
        else:
            result.uploaded.append(Uploaded(item, outcome))
        if on_done is not None:
            on_done(item)

    async def send(group: list[HashedFile]) -> None:
        """Send ``group`` as one request until every file of it has an outcome."""
        remaining = list(group)
        attempt = 1
        while remaining:
            tally = _SizeCounter(report)  # bytes this request read from its files
            # Opening can block on slow/network filesystems: keep it off the event loop.
            opened = await asyncio.to_thread(_open_all, remaining, tally)
            streams: list[_ProgressFile] = []
            for item, fh in zip(list(remaining), opened, strict=True):
                if isinstance(fh, str):
                    finish(item, Failure(item.path, fh))
                    remaining.remove(item)
                else:
                    streams.append(fh)
            if not remaining:
                return
            try:
                with contextlib.ExitStack() as stack:
                    for fh in streams:
                        stack.enter_context(fh)
                    parts = [
                        UploadPart(f.path.name, fh, guess_media_type(f.path))
                        for f, fh in zip(remaining, streams, strict=True)
                    ]
                    assets = await client.upload_assets(slug, parts=parts, tags=tag_list)
            except (ApiError, ServiceUnreachable) as exc:
                report(-tally.n)  # re-sent, or counted whole by finish() if the file failed
                blamed = refused_filename(exc)
                if blamed is not None and len(remaining) > 1:
                    named = [f for f in remaining if f.path.name == blamed]
                    if len(named) != 1:
                        # Two files share the name (or the service changed it): one request
                        # per file tells which one it refuses.
                        for item in remaining:
                            await send([item])
                        return
                    finish(named[0], Failure(named[0].path, str(exc)))
                    remaining.remove(named[0])
                    attempt = 1  # the rest is a new request with its own retries
                    continue
                if is_transient(exc) and attempt < policy.attempts:
                    result.retries += 1
                    await sleep(policy.delay(attempt))
                    attempt += 1
                    continue
                reason = _abort_reason(exc)
                if reason is not None and result.aborted is None:
                    result.aborted = reason
                suffix = f" (after {attempt} attempts)" if attempt > 1 else ""
                for item in remaining:
                    finish(item, Failure(item.path, f"{exc}{suffix}"))
                return
            for item, asset in zip(remaining, assets, strict=True):
                finish(item, asset)
            return

    async def worker() -> None:
        for group in pending:
            if result.aborted is None:
                await send(group)
                continue
            for item in group:
                finish(item, Failure(item.path, f"not attempted: {result.aborted}"))

    workers = max(1, min(concurrency, len(groups)))
    await asyncio.gather(*(worker() for _ in range(workers)))
    return result
