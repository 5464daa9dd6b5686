"""File discovery, streamed hashing and the concurrent upload engine behind ``conveyor upload``.

Everything here is UI-free: progress is reported through plain callbacks so the engine can be
driven by a rich progress bar in the CLI and by simple counters in tests.
"""

from __future__ import annotations

import asyncio
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

from conveyor_cli.client import ApiError, Asset, ServiceUnreachable

CHUNK_SIZE = 1024 * 1024  # 1 MiB: hashing never holds more than this of a file in memory
LOOKUP_BATCH = 1000  # the lookup endpoint's documented maximum per request
DEFAULT_MEDIA_TYPE = "application/octet-stream"

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


class Uploader(Protocol):
    """What the engine needs from a client (``AsyncIngestClient`` satisfies it)."""

    def upload_asset(
        self,
        slug: str,
        *,
        filename: str,
        stream: io.FileIO,
        media_type: str,
        tags: list[str],
    ) -> Awaitable[Asset]:
        """Upload one file and return the asset the service answered."""
        ...


@dataclass(slots=True)
class UploadResult:
    """Outcome of :func:`upload_files`."""

    uploaded: list[Uploaded] = field(default_factory=list)
    duplicates: list[Uploaded] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    retries: int = 0
    aborted: str | None = None


async def upload_files(
    client: Uploader,
    slug: str,
    files: Sequence[HashedFile],
    *,
    tags: Sequence[str] = (),
    concurrency: int = 8,
    retry: RetryPolicy | None = None,
    on_bytes: ByteCallback | None = None,
    on_done: Callable[[HashedFile], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> UploadResult:
    """Upload ``files`` to dataset ``slug`` with ``concurrency`` workers, one file per request.

    Each worker opens one file only while sending it, so memory and descriptors stay bounded
    however many files there are. Transient failures are retried per :class:`RetryPolicy`;
    4xx answers are final. After a failure that would repeat for every file (bad key,
    missing dataset, service down) the remaining files are marked failed without being sent.
    """
    policy = retry or RetryPolicy()
    result = UploadResult()
    pending = iter(files)  # shared by workers; next() is atomic between awaits
    tag_list = list(tags)

    def report(n: int) -> None:
        if on_bytes is not None and n:
            on_bytes(n)

    async def send(item: HashedFile) -> Asset | Failure:
        for attempt in range(1, policy.attempts + 1):
            sent = 0

            def count(n: int) -> None:
                nonlocal sent
                sent += n
                report(n)

            try:
                # Opening can block on slow/network filesystems: keep it off the event loop.
                fh = await asyncio.to_thread(_ProgressFile, item.path, count)
            except OSError as exc:
                report(item.size)
                return Failure(item.path, f"cannot read file: {exc.strerror or exc}")
            try:
                with fh:
                    return await client.upload_asset(
                        slug,
                        filename=item.path.name,
                        stream=fh,
                        media_type=guess_media_type(item.path),
                        tags=tag_list,
                    )
            except (ApiError, ServiceUnreachable) as exc:
                final = not is_transient(exc) or attempt == policy.attempts
                if final:
                    # Count the file's bytes as processed so the bar still reaches the end.
                    report(item.size - sent)
                    reason = _abort_reason(exc)
                    if reason is not None and result.aborted is None:
                        result.aborted = reason
                    suffix = f" (after {attempt} attempts)" if attempt > 1 else ""
                    return Failure(item.path, f"{exc}{suffix}")
                report(-sent)  # this attempt's bytes will be sent again
                result.retries += 1
                await sleep(policy.delay(attempt))
        raise AssertionError("unreachable: the last attempt always returns")

    async def worker() -> None:
        for item in pending:
            if result.aborted is not None:
                result.failed.append(Failure(item.path, f"not attempted: {result.aborted}"))
                report(item.size)
            else:
                outcome = await send(item)
                if isinstance(outcome, Failure):
                    result.failed.append(outcome)
                elif outcome.get("duplicate"):
                    result.duplicates.append(Uploaded(item, outcome))
                else:
                    result.uploaded.append(Uploaded(item, outcome))
            if on_done is not None:
                on_done(item)

    workers = max(1, min(concurrency, len(files)))
    await asyncio.gather(*(worker() for _ in range(workers)))
    return result
