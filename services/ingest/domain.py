"""Pure ingest rules: media-type sniffing, file checks, file names, landing keys, notifications."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

SNIFF_BYTES = 64

_BMP_DIB_SIZES = {12, 40, 52, 56, 64, 108, 124}
_MP4_VIDEO_BRANDS = {
    b"isom",
    b"iso2",
    b"iso3",
    b"iso4",
    b"iso5",
    b"iso6",
    b"mp41",
    b"mp42",
    b"avc1",
    b"M4V ",
    b"M4VH",
    b"M4VP",
    b"3gp4",
    b"3gp5",
    b"3gp6",
    b"3g2a",
    b"dash",
    b"msnv",
    b"f4v ",
    b"mmp4",
    b"XAVC",
    b"MSNV",
    b"NDAS",
}

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


def detect_media_type(head: bytes) -> str | None:
    """The media type the leading bytes of a file announce, or None if Conveyor does not take it.

    Only the magic bytes count; a file's name or declared type is never trusted.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if (
        head[:2] == b"BM"
        and len(head) >= 18
        and head[6:10] == b"\0\0\0\0"  # reserved bytes
        and int.from_bytes(head[14:18], "little") in _BMP_DIB_SIZES
    ):
        return "image/bmp"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"qt  ":
            return "video/quicktime"
        # ISO-BMFF also carries audio (M4A), stills (HEIC, AVIF) and raw photos (CR3)
        return "video/mp4" if brand in _MP4_VIDEO_BRANDS else None
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in head else "video/x-matroska"
    return None


def sanitize_filename(name: str | None) -> str:
    """A display-safe file name: last path component, no control characters, at most 255 chars.

    The result is only ever stored as metadata; it never becomes a path.
    """
    if not name:
        return "unnamed"
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    name = unicodedata.normalize("NFC", name)
    name = name.lstrip(".") or "unnamed"
    return name[:255]


@dataclass(frozen=True)
class LandingObject:
    """An object created in a bucket, as a store notification reports it."""

    bucket: str
    key: str
    size_bytes: int | None
    etag: str | None
    version: str | None = None  # modification time as the store reports it


def dataset_of_landing_key(key: str) -> str | None:
    """The dataset slug a landing key ``<slug>/<path...>`` targets, or None if it has no folder."""
    head, sep, rest = key.partition("/")
    if not sep or not rest or not head:
        return None
    return head


def parse_filer_notification(body: dict[str, Any]) -> LandingObject | None:
    """The created object a SeaweedFS filer webhook document describes, if any.

    The filer reports every change under its tree; only file creations (and overwrites)
    under ``/buckets/<bucket>/`` matter. Directories, deletions, multipart staging parts
    and filer-internal paths (``/buckets/.system/...``) are ignored.
    """
    message = body.get("message") or {}
    entry = message.get("new_entry")
    if not isinstance(entry, dict) or entry.get("is_directory"):
        return None
    if body.get("event_type") not in (None, "create", "update", "rename"):
        return None
    full_key = str(body.get("key") or "")
    new_parent = message.get("new_parent_path")
    if new_parent and entry.get("name"):
        full_key = f"{new_parent.rstrip('/')}/{entry['name']}"
    if not full_key.startswith("/buckets/"):
        return None
    bucket, _, key = full_key[len("/buckets/") :].partition("/")
    if not bucket or not key or bucket.startswith(".") or "/.uploads/" in f"/{key}":
        return None
    attributes = entry.get("attributes") or {}
    size = attributes.get("file_size")
    md5 = attributes.get("md5")
    return LandingObject(
        bucket=bucket,
        key=key,
        size_bytes=int(size) if size is not None else None,
        etag=str(md5) if md5 else None,
        version=str(attributes.get("mtime") or attributes.get("crtime") or "") or None,
    )


class Digest:
    """Accumulates what ingest needs to know about a byte stream in one pass.

    Feed it chunks in order; it keeps the first bytes (for type sniffing), the size and
    the SHA-256, never the content.
    """

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self.head = b""
        self.size = 0

    def feed(self, chunk: bytes) -> None:
        """Account for the next chunk."""
        if len(self.head) < SNIFF_BYTES:
            self.head += chunk[: SNIFF_BYTES - len(self.head)]
        self.size += len(chunk)
        self._sha.update(chunk)

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of everything fed so far."""
        return self._sha.hexdigest()

    @property
    def media_type(self) -> str | None:
        """The sniffed media type (see :func:`detect_media_type`)."""
        return detect_media_type(self.head)


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


def _unsupported() -> FileRejected:
    return FileRejected(
        415,
        "unsupported_media_type",
        "not a supported image or video (JPEG, PNG, WebP, TIFF, BMP, MP4/MOV, AVI, MKV/WebM)",
    )


def feed_checked(digest: Digest, chunk: bytes, max_bytes: int) -> None:
    """Feed ``chunk``; refuse the file the moment it passes ``max_bytes`` (413), or the moment
    its first bytes show a type Conveyor does not take (415), so the rest is never read."""
    before = digest.size
    digest.feed(chunk)
    if digest.size > max_bytes:
        raise FileRejected(413, "file_too_large", f"file is larger than {max_bytes} bytes")
    if before < SNIFF_BYTES <= digest.size and digest.media_type is None:
        raise _unsupported()


def inspected(digest: Digest) -> Inspected:
    """What a fully fed digest says about its file; 422 if it was empty, 415 if not media."""
    if digest.size == 0:
        raise FileRejected(422, "empty", "the file is empty (0 bytes)")
    media_type = digest.media_type
    if media_type is None:
        raise _unsupported()
    return Inspected(media_type, digest.size, digest.sha256)


def inspect_chunks(chunks: Iterable[bytes], max_bytes: int) -> Inspected:
    """Sniff, size and hash a stream in one pass, stopping as soon as it is refused."""
    digest = Digest()
    for chunk in chunks:
        feed_checked(digest, chunk, max_bytes)
    return inspected(digest)


MAX_TAGS = 50
MAX_TAG_LENGTH = 64
# A tag is a plain label: no control characters, and no braces or brackets (a structured
# value such as ``{}`` or ``[1]`` sent as a tag is a client mistake, not a label). Blank
# tags are allowed and dropped.
TAG_PATTERN = r"^[^\x00-\x1f\x7f{}\[\]]*$"
_TAG = re.compile(TAG_PATTERN)


def clean_tags(tags: Iterable[str]) -> list[str]:
    """The tags of an upload: trimmed, deduplicated, sorted; FileRejected (422) if unfit.

    A tag is text of at most 64 characters matching :data:`TAG_PATTERN` (no NUL or other
    control character, which Postgres text refuses or a display would garble; no braces or
    brackets), and a request has at most 50.
    """
    cleaned = sorted({t.strip() for t in tags if t.strip()})
    if len(cleaned) > MAX_TAGS:
        raise FileRejected(422, "too_many_tags", f"at most {MAX_TAGS} tags per upload")
    for tag in cleaned:
        if len(tag) > MAX_TAG_LENGTH:
            raise FileRejected(
                422, "validation_error", f"tags are at most {MAX_TAG_LENGTH} characters"
            )
        if any(unicodedata.category(ch)[0] == "C" for ch in tag) or not _TAG.match(tag):
            raise FileRejected(
                422,
                "validation_error",
                f"tag {tag!r} contains a control character, a brace or a bracket",
            )
    return cleaned
