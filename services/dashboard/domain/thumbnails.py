"""Thumbnails: a file's declared size read from its header, and the small JPEG made from it.

The declared width and height are read before anything is decoded, so a small file that
declares a huge raster (a decompression bomb) is refused from a few dozen bytes. Formats whose
header is not read here are refused too: a thumbnail is a convenience, never worth a risk.
"""

from __future__ import annotations

import struct
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

# Refuse to decode rasters larger than this (clean rejects the same ones by default).
MAX_PIXELS = 100_000_000
JPEG_QUALITY = 80


class NoThumbnail(Exception):
    """The media cannot be made into a thumbnail (unreadable, undecodable or too large)."""


def declared_size(data: bytes) -> tuple[int, int] | None:
    """The (width, height) a JPEG, PNG, WebP, GIF or BMP header declares; None when the
    bytes are none of these or their header cannot be read."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
            return _positive(*struct.unpack_from(">II", data, 16))
        if data.startswith((b"GIF87a", b"GIF89a")):
            return _positive(*struct.unpack_from("<HH", data, 6))
        if data[:2] == b"BM":
            width, height = struct.unpack_from("<ii", data, 18)
            return _positive(width, abs(height))
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
        if data.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
    except struct.error:
        return None
    return None


def _positive(width: int, height: int) -> tuple[int, int] | None:
    return (width, height) if width > 0 and height > 0 else None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return _positive(w, h)
    if chunk == b"VP8L":
        bits = struct.unpack_from("<I", data, 21)[0]
        return _positive((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8 ":
        w, h = struct.unpack_from("<HH", data, 26)
        return _positive(w & 0x3FFF, h & 0x3FFF)
    return None


# Start-of-frame markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range.
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # no length field
            at += 2
            continue
        (length,) = struct.unpack_from(">H", data, at + 2)
        if marker in _SOF:
            height, width = struct.unpack_from(">HH", data, at + 5)
            return _positive(width, height)
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        at += 2 + length
    return None


def fitted(width: int, height: int, longest: int) -> tuple[int, int]:
    """The size of an image scaled so its longest side is ``longest`` (never 0 pixels)."""
    scale = longest / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def image_thumbnail(data: bytes, longest: int, max_pixels: int = MAX_PIXELS) -> bytes:
    """A JPEG of the image in ``data`` whose longest side is ``longest`` pixels."""
    size = declared_size(data)
    if size is None:
        raise NoThumbnail("the file's header declares no readable image size")
    if size[0] * size[1] > max_pixels:
        raise NoThumbnail(f"the image declares {size[0]}x{size[1]} pixels, too many to decode")
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), reduced_read_flag(*size, longest))
    if pixels is None:
        raise NoThumbnail("the image cannot be decoded")
    return frame_thumbnail(pixels, longest)


# OpenCV's reduced reads: JPEGs are decoded straight at 1/2, 1/4 or 1/8 scale (libjpeg's DCT
# scaling), which is several times faster than decoding in full and shrinking afterwards.
_REDUCED = (
    (8, cv2.IMREAD_REDUCED_COLOR_8),
    (4, cv2.IMREAD_REDUCED_COLOR_4),
    (2, cv2.IMREAD_REDUCED_COLOR_2),
)


def reduced_read_flag(width: int, height: int, longest: int) -> int:
    """The cheapest imdecode flag whose raster still has a longest side of ``longest`` or more."""
    for factor, flag in _REDUCED:
        if max(width, height) // factor >= longest:
            return flag
    return cv2.IMREAD_COLOR


def video_thumbnail(path: str, longest: int, max_pixels: int = MAX_PIXELS) -> bytes:
    """A JPEG of the first frame of the video file at ``path`` (OpenCV's readers take a path)."""
    capture = cv2.VideoCapture(path)
    try:
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width * height > max_pixels:
            raise NoThumbnail(f"the video's frames are {width}x{height}, too many pixels")
        ok, frame = capture.read()
    finally:
        capture.release()
    if not ok or frame is None:
        raise NoThumbnail("the video has no decodable frame")
    return frame_thumbnail(frame, longest)


def frame_thumbnail(pixels: NDArray[Any], longest: int) -> bytes:
    """Decoded pixels (BGR or grayscale) scaled to ``longest`` and encoded as JPEG."""
    height, width = pixels.shape[:2]
    if width == 0 or height == 0:
        raise NoThumbnail("the image has no pixels")
    target = fitted(width, height, longest)
    # INTER_AREA averages the pixels a target pixel covers (no aliasing when shrinking).
    interpolation = cv2.INTER_AREA if max(width, height) > longest else cv2.INTER_LINEAR
    small = cv2.resize(pixels, target, interpolation=interpolation)
    ok, encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise NoThumbnail("the thumbnail could not be encoded")
    return bytes(encoded.tobytes())


def thumbnail_key(sha256: str, size: int) -> str:
    """Where a thumbnail lives in conveyor-derived."""
    return f"thumbnails/{sha256}/{size}.jpg"


def is_video(media_type: str | None) -> bool:
    """Whether a thumbnail is made from a video's first frame."""
    return (media_type or "").startswith("video/")
