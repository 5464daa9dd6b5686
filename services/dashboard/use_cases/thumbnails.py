"""Thumbnails: made once from the raw object, kept in conveyor-derived, served from there.

Two first requests for one asset at the same moment may both make its thumbnail and both
store it: the bytes are the same, the second put replaces the first, nothing breaks.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any

from minio.error import S3Error

from services.dashboard.context import Dashboard
from services.dashboard.domain.thumbnails import (
    NoThumbnail,
    image_thumbnail,
    is_video,
    thumbnail_key,
    video_thumbnail,
)
from services.dashboard.use_cases.assets import visible_asset
from shared.auth import Principal
from shared.errors import ApiError
from shared.storage import DERIVED_BUCKET, ObjectStore, StoreUnavailable

log = logging.getLogger(__name__)

# Images larger than this are not read into memory to be thumbnailed.
MAX_IMAGE_BYTES = 256 * 1024 * 1024
# Thumbnails made at once: each holds a decoded raster (up to MAX_PIXELS x 3 bytes).
_MAKING = asyncio.Semaphore(4)


@dataclass(frozen=True)
class Thumbnail:
    """A JPEG thumbnail and its validator."""

    content: bytes
    etag: str
    made: bool  # made by this request (False: read from conveyor-derived)


async def thumbnail(dashboard: Dashboard, principal: Principal, asset_id: uuid.UUID) -> Thumbnail:
    """The asset's thumbnail: from conveyor-derived, or made from the raw object and stored."""
    row = await visible_asset(dashboard, principal, asset_id)
    sha256, bucket, key = row.get("sha256"), row.get("bucket"), row.get("object_key")
    if not sha256 or not bucket or not key:
        raise _no_thumbnail(asset_id, "the asset's stored object is not known yet")
    size = dashboard.settings.thumbnail_size
    store = dashboard.store
    derived = thumbnail_key(sha256, size)
    etag = f'"{sha256}-{size}"'
    if await store.stat(DERIVED_BUCKET, derived) is not None:
        return Thumbnail(
            await asyncio.to_thread(_read, store, DERIVED_BUCKET, derived), etag, False
        )
    async with _MAKING:
        try:
            content = await asyncio.to_thread(
                _make, store, bucket, key, row.get("media_type"), row.get("size_bytes"), size
            )
        except NoThumbnail as exc:
            raise _no_thumbnail(asset_id, str(exc)) from exc
        except S3Error as exc:  # the raw object is gone (or the store refused to read it)
            raise _no_thumbnail(asset_id, f"the stored object cannot be read ({exc.code})") from exc
    try:
        await store.put_stream(
            DERIVED_BUCKET, derived, io.BytesIO(content), len(content), content_type="image/jpeg"
        )
    except (StoreUnavailable, S3Error) as exc:
        # the thumbnail is still good to show; the next request makes it again
        log.warning("thumbnail of %s not stored: %s", asset_id, exc)
    return Thumbnail(content, etag, True)


def _no_thumbnail(asset_id: uuid.UUID, why: str) -> ApiError:
    return ApiError(404, "no_thumbnail", f"no thumbnail for asset {asset_id}: {why}")


def _read(store: ObjectStore, bucket: str, key: str) -> bytes:
    return b"".join(store.iter_chunks(bucket, key))


def _make(
    store: ObjectStore, bucket: str, key: str, media_type: Any, size_bytes: Any, size: int
) -> bytes:
    """Read the raw object and make its thumbnail (blocking: runs in a worker thread)."""
    if is_video(media_type):
        # OpenCV reads videos from a path: the object is streamed to a temporary file.
        fd, path = tempfile.mkstemp(prefix="conveyor-thumb-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in store.iter_chunks(bucket, key):
                    out.write(chunk)
            return video_thumbnail(path, size)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)
    if isinstance(size_bytes, int) and size_bytes > MAX_IMAGE_BYTES:
        raise NoThumbnail(f"the file is over {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    return image_thumbnail(_read(store, bucket, key), size)
