"""Object storage on any S3 endpoint through the ``minio`` SDK.

The SDK is synchronous; its calls run in a worker thread so the event loop never blocks. One
call is the exception: a single-request PUT (up to :data:`PART_SIZE`), the write of almost every
upload. The SDK signs it (a presigned URL) and aiohttp sends it from the event loop: through the
SDK in threads a put cost 1.0-1.3 ms of CPU, and the threads' Python work held the GIL the event
loop was waiting for; sent by aiohttp, 0.55 ms (``bench/ingest.py`` has the figures).
Every call has connect and read timeouts; a store that cannot be reached or stops answering
raises :class:`StoreUnavailable` (a ``ConnectionError``): the HTTP shell answers 503 with
``Retry-After`` and consumers wait the outage out, as for Postgres and Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import BinaryIO, ParamSpec, TypeVar

import aiohttp
import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.error import S3Error
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_http_instrumentation
from opentelemetry.trace import SpanKind
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from shared.settings import ServiceSettings

LANDING_BUCKET = "conveyor-landing"
RAW_BUCKET = "conveyor-raw"
DERIVED_BUCKET = "conveyor-derived"
EXPORTS_BUCKET = "conveyor-exports"
ALL_BUCKETS = (LANDING_BUCKET, RAW_BUCKET, DERIVED_BUCKET, EXPORTS_BUCKET)

PART_SIZE = 8 * 1024 * 1024  # multipart chunk: bounds memory per streamed upload
_MISSING = {"NoSuchKey", "NoSuchObject", "NoSuchBucket", "ResourceNotFound"}
# A presigned PUT is sent at once; the signature only has to outlive the request's retries.
PUT_SIGNATURE_LIFETIME = timedelta(minutes=15)
# like the SDK's transport: a refused connection or a 500/502/503 is retried, a timeout is not
PUT_ATTEMPTS = 3
_RETRIED_STATUSES = {500, 502, 503}
SPOOL_READ_ON_LOOP_BYTES = 1024 * 1024
_S3_ERROR_CODE = re.compile(rb"<Code>([A-Za-z0-9.]{1,64})</Code>")


_tracer = trace.get_tracer("conveyor.storage")

P = ParamSpec("P")
R = TypeVar("R")


class StoreUnavailable(ConnectionError):
    """The object store could not be reached or did not answer in time."""


class _TransientPutFailure(StoreUnavailable):
    """A PUT that may succeed if sent again (connection refused or dropped, 500/502/503)."""


class StoreRefused(RuntimeError):
    """The object store answered a request with an error that sending it again will not mend
    (access denied, no such bucket, ...)."""


@contextlib.contextmanager
def _unavailable_as_error() -> Iterator[None]:
    try:
        yield
    except urllib3.exceptions.HTTPError as exc:  # timeouts, refused/reset connections, retries
        raise StoreUnavailable(f"object store unavailable: {exc}") from exc


async def _in_thread(call: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run a blocking SDK call in a worker thread, its transport failures as StoreUnavailable."""

    @functools.wraps(call)
    def guarded() -> R:
        with _unavailable_as_error():
            return call(*args, **kwargs)

    return await asyncio.to_thread(guarded)


def _s3_error_code(answer: bytes) -> str:
    """The ``<Code>`` of an S3 error document, or a sign that the answer was not one."""
    found = _S3_ERROR_CODE.search(answer)
    return found.group(1).decode("ascii") if found else "(not an S3 error document)"


def content_address(sha256_hex: str) -> str:
    """The key of a blob in ``conveyor-raw``: ``sha256/ab/cd/<sha256>``."""
    return f"sha256/{sha256_hex[:2]}/{sha256_hex[2:4]}/{sha256_hex}"


@dataclass(frozen=True)
class ObjectInfo:
    """What the store says about an object."""

    bucket: str
    key: str
    size: int
    etag: str | None


class ObjectStore:
    """Async facade over a Minio client for the operations Conveyor needs."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._put_timeout = aiohttp.ClientTimeout(
            sock_connect=settings.s3_connect_timeout_seconds,
            sock_read=settings.s3_read_timeout_seconds,
        )
        # aiohttp's session for single-request PUTs, made in (and bound to) a running loop
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        timeout = urllib3.Timeout(
            connect=settings.s3_connect_timeout_seconds, read=settings.s3_read_timeout_seconds
        )
        http = urllib3.PoolManager(
            maxsize=64,
            timeout=timeout,
            # A timed-out read is not retried here: one hung call must not cost three timeouts.
            retries=urllib3.Retry(
                total=3, read=0, backoff_factor=0.2, status_forcelist=[500, 502, 503]
            ),
        )
        self._client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            secure=settings.s3_secure,
            region=settings.s3_region,
            http_client=http,
        )
        # Presigning is local arithmetic; it signs for the address clients will use.
        self._presigner = Minio(
            settings.s3_public_endpoint or settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            secure=settings.s3_secure,
            region=settings.s3_region,
        )

    async def ensure_buckets(self, buckets: tuple[str, ...] = ALL_BUCKETS) -> None:
        """Create the buckets that do not exist yet."""

        def _ensure() -> None:
            for bucket in buckets:
                if not self._client.bucket_exists(bucket):
                    try:
                        self._client.make_bucket(bucket)
                    except S3Error as exc:
                        if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                            raise

        await _in_thread(_ensure)

    async def ping(self) -> None:
        """Raise if the store does not answer an authenticated request."""
        await _in_thread(self._client.bucket_exists, RAW_BUCKET)

    async def stat(self, bucket: str, key: str) -> ObjectInfo | None:
        """Size and etag of an object, or None if it does not exist."""

        def _stat() -> ObjectInfo | None:
            try:
                st = self._client.stat_object(bucket, key)
            except S3Error as exc:
                if exc.code in _MISSING:
                    return None
                raise
            return ObjectInfo(bucket, key, st.size or 0, st.etag)

        return await _in_thread(_stat)

    async def put_stream(
        self, bucket: str, key: str, stream: BinaryIO, length: int, content_type: str
    ) -> None:
        """Upload from a file object: up to :data:`PART_SIZE` in one request from the event
        loop (:meth:`_put_one_request`), bigger ones in parts through the SDK, never read whole.

        Traced as one client span of its own (``PUT <bucket>``), not by the urllib3
        instrumentation's span per HTTP request: that one also binds the call's signature,
        injects trace headers the store ignores and records three metrics, which cost ingest
        about an eighth of its CPU per upload.
        """
        attributes = {
            "http.request.method": "PUT",
            "rpc.system": "aws-api",
            "rpc.service": "S3",
            "rpc.method": "PutObject",
            "aws.s3.bucket": bucket,
            "aws.s3.key": key,
        }
        with (
            _tracer.start_as_current_span(
                f"PUT {bucket}", kind=SpanKind.CLIENT, attributes=attributes
            ),
            suppress_http_instrumentation(),  # the worker thread runs in a copy of this context
        ):
            if length <= PART_SIZE:
                if length <= SPOOL_READ_ON_LOOP_BYTES:
                    data = stream.read(length)
                else:  # it may be a file on disk: read beside the loop
                    data = await asyncio.to_thread(stream.read, length)
                await self._put_one_request(bucket, key, data, content_type)
                return
            await _in_thread(
                self._client.put_object,
                bucket,
                key,
                stream,
                length,
                content_type=content_type,
                part_size=PART_SIZE,
            )

    async def _put_one_request(self, bucket: str, key: str, data: bytes, content_type: str) -> None:
        """PUT ``data`` in one request, signed by the SDK and sent by aiohttp; connection
        failures and 500/502/503 are retried, then raise :class:`StoreUnavailable`."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(PUT_ATTEMPTS),
            wait=wait_exponential(multiplier=0.2),
            retry=retry_if_exception_type(_TransientPutFailure),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                url = self._client.presigned_put_object(bucket, key, PUT_SIGNATURE_LIFETIME)
                try:
                    async with self._http().put(
                        url, data=data, headers={"Content-Type": content_type}
                    ) as response:
                        answer = await response.read()
                except TimeoutError as exc:  # aiohttp's are connection errors too: not retried
                    raise StoreUnavailable(f"object store unavailable: {exc!r}") from exc
                except aiohttp.ClientConnectionError as exc:
                    raise _TransientPutFailure(f"object store unavailable: {exc}") from exc
                except aiohttp.ClientError as exc:
                    raise StoreUnavailable(f"object store unavailable: {exc!r}") from exc
                if response.status in _RETRIED_STATUSES:
                    raise _TransientPutFailure(
                        f"object store unavailable: PUT {bucket} answered {response.status}"
                    )
                if response.status != 200:
                    raise StoreRefused(
                        f"object store refused PUT {bucket}/{key}: {response.status} "
                        f"{_s3_error_code(answer)}"
                    )

    def _http(self) -> aiohttp.ClientSession:
        """The session of the running loop (a new loop, as in tests, gets a new one)."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64), timeout=self._put_timeout
            )
            self._session_loop = loop
        return self._session

    async def aclose(self) -> None:
        """Close the PUT session's connections (the SDK's pool needs no closing)."""
        if self._session is not None and self._session_loop is asyncio.get_running_loop():
            await self._session.close()
        self._session = self._session_loop = None

    async def copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str) -> None:
        """Server-side copy (no bytes pass through this process)."""
        await _in_thread(
            self._client.copy_object, dst_bucket, dst_key, CopySource(src_bucket, src_key)
        )

    async def remove(self, bucket: str, key: str) -> None:
        """Delete an object (missing objects are fine)."""
        await _in_thread(self._client.remove_object, bucket, key)

    def iter_chunks(self, bucket: str, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """Stream an object's bytes (blocking: call from a worker thread)."""
        with _unavailable_as_error():
            response = self._client.get_object(bucket, key)
            try:
                yield from response.stream(chunk_size)
            finally:
                response.close()
                response.release_conn()

    async def list_keys(self, bucket: str, prefix: str = "") -> list[ObjectInfo]:
        """Every object under a prefix (used for one-off reconciles, not polling)."""

        def _list() -> list[ObjectInfo]:
            return [
                ObjectInfo(bucket, o.object_name or "", o.size or 0, o.etag)
                for o in self._client.list_objects(bucket, prefix=prefix, recursive=True)
                if o.object_name and not o.is_dir
            ]

        return await _in_thread(_list)

    def presigned_get(self, bucket: str, key: str, expires: timedelta) -> str:
        """A time-limited download URL."""
        return str(self._presigner.presigned_get_object(bucket, key, expires=expires))
