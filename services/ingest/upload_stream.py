"""Reads an upload request's multipart body as it streams in.

Each file part is sniffed, sized and hashed while it arrives and spooled to a temporary file
(memory up to 8 MiB, the store's part size, then local disk). The first 8 MiB of a request
are parsed on the event loop (a chunk costs less than a hop to a worker thread); the rest,
whose spooling writes to disk, in a worker thread. A file whose first bytes show an
unsupported type, that grows past the size limit, or that ends empty is refused at that
moment: the rest of the body is never read or spooled. File names of any length are
accepted (and shortened later); the part header limit is far above what a browser or
client sends.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from fastapi import Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from services.ingest.domain import Digest, FileRejected, Inspected, feed_checked, inspected

if TYPE_CHECKING:  # the library declares its callback type for type checkers only
    from python_multipart.multipart import MultipartCallbacks

SPOOL_IN_MEMORY_BYTES = 8 * 1024 * 1024
# Bytes of a request parsed on the event loop before parsing moves to a worker thread.
PARSE_INLINE_BYTES = SPOOL_IN_MEMORY_BYTES
# A part's header line: a 5,000-character file name must fit; 64 KiB is plenty.
MAX_PART_HEADER_BYTES = 64 * 1024
MAX_FIELD_BYTES = 64 * 1024
MAX_FILES = 1000


class MalformedUpload(ValueError):
    """The body is not the multipart form the upload endpoint takes (a 422)."""


class ChunkSpool:
    """A file's bytes: the chunks as they came while they fit in ``max_size``, else a
    temporary file on disk. Readable from the start after :meth:`seek` (0).

    Keeping the chunks (not one growing buffer, as ``SpooledTemporaryFile`` does) copies each
    byte once on the way in and once on the way out to the store.
    """

    def __init__(self, max_size: int) -> None:
        self._max_size = max_size
        self._chunks: list[bytes] = []
        self._size = 0
        self._index = 0  # reading: the chunk at hand, and the offset in it
        self._offset = 0
        self._file: IO[bytes] | None = None

    def write(self, chunk: bytes) -> None:
        """Append ``chunk``."""
        if self._file is not None:
            self._file.write(chunk)
            return
        self._chunks.append(chunk)
        self._size += len(chunk)
        if self._size > self._max_size:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
            self._file.writelines(self._chunks)
            self._chunks = []

    def seek(self, position: int) -> int:
        """Only back to the start (0), which is all the store's reads need."""
        if position != 0:
            raise ValueError("a spool is read from its start only")
        self._index = self._offset = 0
        if self._file is not None:
            self._file.seek(0)
        return 0

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (every remaining byte if negative)."""
        if self._file is not None:
            return self._file.read(size)
        parts: list[bytes] = []
        wanted = size if size >= 0 else self._size
        while wanted > 0 and self._index < len(self._chunks):
            chunk = self._chunks[self._index]
            part = chunk[self._offset : self._offset + wanted]
            parts.append(part)
            wanted -= len(part)
            self._offset += len(part)
            if self._offset >= len(chunk):
                self._index, self._offset = self._index + 1, 0
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        """Let go of the bytes (and remove the file, if any)."""
        self._chunks = []
        if self._file is not None:
            self._file.close()


@dataclass
class ReceivedFile:
    """A file part: its name as sent, its spooled bytes and what they are."""

    filename: str | None
    spool: ChunkSpool
    inspected: Inspected


@dataclass
class ReceivedUpload:
    """The ``files`` parts and ``tags`` fields of one upload request."""

    files: list[ReceivedFile] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    def close(self) -> None:
        """Remove the spooled files."""
        for received in self.files:
            received.spool.close()


class _Part:
    """The part being read: its headers, then either a file or a text field."""

    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.header_name = b""
        self.header_value = b""
        self.name: str | None = None
        self.filename: str | None = None
        self.digest: Digest | None = None
        self.spool: ChunkSpool | None = None
        self.text = bytearray()


class _Reader:
    """Callbacks of the streaming parser, one chunk at a time (on the loop or a worker thread)."""

    def __init__(self, max_file_bytes: int) -> None:
        self.max_file_bytes = max_file_bytes
        self.upload = ReceivedUpload()
        self.part = _Part()
        self.open_spools: list[ChunkSpool] = []
        self.ended = False

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    def on_end(self) -> None:
        self.ended = True

    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.part.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.part.header_value += data[start:end]

    def on_header_end(self) -> None:
        part = self.part
        part.headers[part.header_name.strip().lower()] = part.header_value.strip()
        part.header_name = part.header_value = b""

    def on_headers_finished(self) -> None:
        part = self.part
        _, options = parse_options_header(part.headers.get(b"content-disposition", b""))
        name = options.get(b"name")
        part.name = name.decode("utf-8", "replace") if name is not None else None
        filename = options.get(b"filename")
        if part.name == "files":
            if len(self.upload.files) >= MAX_FILES:
                raise MalformedUpload(f"at most {MAX_FILES} files per request")
            part.filename = filename.decode("utf-8", "replace") if filename is not None else None
            part.digest = Digest()
            # closed by ReceivedUpload.close, or at once if the request is refused
            part.spool = ChunkSpool(SPOOL_IN_MEMORY_BYTES)
            self.open_spools.append(part.spool)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self.part
        chunk = data[start:end]
        if part.digest is None or part.spool is None:
            if part.name == "tags":
                part.text += chunk
                if len(part.text) > MAX_FIELD_BYTES:
                    raise MalformedUpload("a tags field is larger than 64 KiB")
            return  # a field the endpoint does not take is skipped, as before
        feed_checked(part.digest, chunk, self.max_file_bytes)
        part.spool.write(chunk)

    def on_part_end(self) -> None:
        part = self.part
        if part.digest is not None and part.spool is not None:
            found = inspected(part.digest)
            self.upload.files.append(ReceivedFile(part.filename, part.spool, found))
        elif part.name == "tags":
            try:
                self.upload.tags.append(part.text.decode())
            except UnicodeDecodeError as exc:
                raise MalformedUpload("a tags field is not UTF-8 text") from exc


class FileRefused(Exception):
    """A file of the request was refused; ``filename`` is the part's name as sent."""

    def __init__(self, filename: str | None, reason: FileRejected) -> None:
        super().__init__(reason.message)
        self.filename = filename
        self.reason = reason


async def receive_upload(request: Request, max_file_bytes: int) -> ReceivedUpload:
    """Parse the request's multipart body; FileRefused or MalformedUpload stop it early."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise MalformedUpload("the body must be multipart/form-data with `files` parts")
    reader = _Reader(max_file_bytes)
    parser = MultipartParser(boundary, reader.callbacks(), max_header_size=MAX_PART_HEADER_BYTES)
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received <= PARSE_INLINE_BYTES:
                parser.write(chunk)
            elif chunk:
                await asyncio.to_thread(parser.write, chunk)
        parser.finalize()
        if not reader.ended:
            raise MalformedUpload("the multipart body ends before its closing boundary")
    except FileRejected as exc:
        _close(reader.open_spools)
        raise FileRefused(reader.part.filename, exc) from exc
    except FormParserError as exc:
        _close(reader.open_spools)
        raise MalformedUpload(f"the multipart body cannot be read: {exc}") from exc
    except BaseException:
        _close(reader.open_spools)
        raise
    if not reader.upload.files:
        _close(reader.open_spools)
        raise MalformedUpload("no `files` part in the request")
    return reader.upload


def _close(spools: list[ChunkSpool]) -> None:
    for spool in spools:
        spool.close()
