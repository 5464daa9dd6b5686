"""What an image file's bytes say before any pixel is decoded.

The declared width and height are read from the format's own header (JPEG SOF, PNG IHDR, WebP
VP8/VP8L/VP8X, BMP DIB header, TIFF IFD0) by hand, so a decompression bomb can be refused from a
few dozen bytes. The structure checks (JPEG marker walk up to the end-of-image marker, PNG chunk
CRCs up to IEND, RIFF and BMP declared sizes) name the exact defect where a decoder would only say
"failed".
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

from services.clean.checks.thresholds import CheckResult, UnreadableMedia

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Codes for files that cannot be trusted to hold the image they claim to hold.
CORRUPTION_CODES = frozenset(
    {
        "empty",
        "unrecognized_format",
        "header_unreadable",
        "truncated",
        "checksum_mismatch",
        "decode_failed",
        "dimension_mismatch",
    }
)

# Start-of-frame markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range.
_JPEG_SOF_MARKERS = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)
# Markers without a length field: TEM and the restart markers.
_JPEG_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})
# Inside entropy-coded data a 0xFF is followed by 0x00 (stuffing) or a restart marker, so the
# first 0xFF followed by anything else is the next real marker.
_JPEG_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}
_TIFF_WIDTH, _TIFF_HEIGHT, _TIFF_SAMPLES, _TIFF_ORIENTATION = 256, 257, 277, 274


@dataclass(frozen=True)
class ImageHeader:
    """The facts an image header declares.

    ``channels`` is the stored channel count where the header says it (1 for grayscale), else
    None. ``orientation`` is the EXIF/TIFF orientation tag (1 = stored upright).
    """

    format: str
    width: int
    height: int
    channels: int | None = None
    orientation: int = 1

    @property
    def pixels(self) -> int:
        """Declared width x height."""
        return self.width * self.height


class UnreadableImage(UnreadableMedia):
    """The file's header cannot be read, so nothing about it can be trusted or decoded."""


def sniff_format(data: bytes) -> str | None:
    """The image format the leading bytes announce, or None for anything else."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:2] == b"BM" and len(data) >= 18:
        return "bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    return None


def read_header(data: bytes) -> ImageHeader:
    """The header of a JPEG, PNG, WebP, BMP or TIFF file.

    Raises :class:`UnreadableImage` (code ``empty``, ``unrecognized_format``, ``truncated`` or
    ``header_unreadable``) when there is no usable header. Reads only the header bytes.
    """
    if not data:
        raise UnreadableImage("empty", "the file is empty (zero bytes)")
    kind = sniff_format(data)
    if kind is None:
        raise UnreadableImage(
            "unrecognized_format",
            "the first bytes match no supported image format (JPEG, PNG, WebP, BMP, TIFF)",
        )
    try:
        header = _HEADER_READERS[kind](data)
    except struct.error:
        raise UnreadableImage("truncated", f"the {kind.upper()} header ends early") from None
    if header.width <= 0 or header.height <= 0:
        raise UnreadableImage(
            "header_unreadable",
            f"the {kind.upper()} header declares {header.width}x{header.height} pixels",
        )
    return header


def structure_problems(data: bytes, header: ImageHeader) -> list[CheckResult]:
    """Defects in the file's structure: truncation and checksum failures, each as a failed check.

    An empty list means the structure is sound as far as the format lets us tell without
    decoding. Bytes after a JPEG's end-of-image marker are allowed (motion photos append video).
    """
    if header.format == "jpeg":
        return _jpeg_problems(data)
    if header.format == "png":
        return _png_problems(data)
    if header.format == "webp":
        declared = struct.unpack_from("<I", data, 4)[0] + 8
        return _size_problems("WebP RIFF", declared, len(data))
    if header.format == "bmp":
        declared = struct.unpack_from("<I", data, 2)[0]
        # some writers leave the size field at zero
        return _size_problems("BMP", declared, len(data)) if declared else []
    return []


def dimension_mismatch(header: ImageHeader, width: int, height: int) -> CheckResult | None:
    """A failed check if the decoded raster's size differs from the header's, else None.

    ``width`` and ``height`` are those of the raster as stored, before any orientation is applied.
    """
    if (width, height) == (header.width, header.height):
        return None
    return CheckResult(
        "dimension_mismatch",
        False,
        float(width * height),
        float(header.pixels),
        f"the header declares {header.width}x{header.height} but {width}x{height} decoded",
    )


def _size_problems(container: str, declared: int, actual: int) -> list[CheckResult]:
    if declared <= actual:
        return []
    return [
        CheckResult(
            "truncated",
            False,
            float(actual),
            float(declared),
            f"the {container} header declares {declared} bytes but the file has {actual}",
        )
    ]


def _truncated(message: str) -> list[CheckResult]:
    return [CheckResult("truncated", False, None, None, message)]


# ---- JPEG ------------------------------------------------------------------------------------


def _read_jpeg(data: bytes) -> ImageHeader:
    orientation = 1
    pos = 2
    while True:
        marker, pos = _jpeg_marker_at(data, pos)
        if marker in _JPEG_STANDALONE_MARKERS:
            continue
        if marker in (0xD9, 0xDA):
            raise UnreadableImage("header_unreadable", "the JPEG has no frame header (SOF)")
        (length,) = struct.unpack_from(">H", data, pos)
        segment = data[pos + 2 : pos + length]
        if length < 2 or len(segment) != length - 2:
            raise UnreadableImage("truncated", f"the JPEG ends inside a segment at byte {pos}")
        if marker in _JPEG_SOF_MARKERS:
            _, height, width, components = struct.unpack_from(">BHHB", segment)
            return ImageHeader("jpeg", width, height, components, orientation)
        if marker == 0xE1 and segment.startswith(b"Exif\0\0"):
            orientation = _exif_orientation(segment[6:])
        pos += length


def _exif_orientation(tiff: bytes) -> int:
    """The orientation an EXIF block declares; 1 (upright) if it is missing or malformed."""
    try:
        orientation = _tiff_ifd0(tiff).get(_TIFF_ORIENTATION, 1)
    except (UnreadableImage, struct.error):
        # broken metadata does not make the picture unreadable
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def _jpeg_marker_at(data: bytes, pos: int) -> tuple[int, int]:
    """The marker starting at ``pos`` (fill bytes skipped) and the position after it."""
    if pos >= len(data):
        raise UnreadableImage("truncated", "the JPEG ends before its frame header")
    if data[pos] != 0xFF:
        raise UnreadableImage("header_unreadable", f"no JPEG marker at byte {pos}")
    while pos < len(data) and data[pos] == 0xFF:
        pos += 1
    if pos >= len(data):
        raise UnreadableImage("truncated", "the JPEG ends before its frame header")
    return data[pos], pos + 1


def _jpeg_problems(data: bytes) -> list[CheckResult]:
    pos = 2
    while pos < len(data):
        if data[pos] != 0xFF:
            return _truncated(f"the JPEG has stray data where a marker belongs (byte {pos})")
        while pos < len(data) and data[pos] == 0xFF:
            pos += 1
        if pos >= len(data):
            break
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            return []
        if marker in _JPEG_STANDALONE_MARKERS:
            continue
        if pos + 2 > len(data):
            break
        (length,) = struct.unpack_from(">H", data, pos)
        pos += length
        if pos > len(data):
            return _truncated("the JPEG ends inside a segment (premature end of file)")
        if marker == 0xDA:
            found = _JPEG_NEXT_MARKER.search(data, pos)
            if found is None:
                return _truncated("the JPEG ends inside its compressed image data")
            pos = found.start()
    return _truncated("the JPEG has no end-of-image marker (FF D9)")


# ---- PNG -------------------------------------------------------------------------------------


def _read_png(data: bytes) -> ImageHeader:
    length, kind = struct.unpack_from(">I4s", data, 8)
    if kind != b"IHDR" or length != 13:
        raise UnreadableImage("header_unreadable", "the PNG does not start with an IHDR chunk")
    width, height, _depth, colour_type = struct.unpack_from(">IIBB", data, 16)
    return ImageHeader("png", width, height, _PNG_CHANNELS.get(colour_type))


def _png_problems(data: bytes) -> list[CheckResult]:
    view = memoryview(data)
    bad: list[str] = []
    pos = len(PNG_SIGNATURE)
    ended = False
    while pos + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            break
        (stored_crc,) = struct.unpack_from(">I", data, end - 4)
        if zlib.crc32(view[pos + 4 : end - 4]) != stored_crc:
            bad.append(kind.decode("latin-1"))
        pos = end
        if kind == b"IEND":
            ended = True
            break
    problems: list[CheckResult] = []
    if bad:
        problems.append(
            CheckResult(
                "checksum_mismatch",
                False,
                float(len(bad)),
                0.0,
                f"{len(bad)} PNG chunk(s) fail their CRC, first {bad[0]}",
            )
        )
    if not ended:
        problems += _truncated("the PNG ends before its IEND chunk")
    return problems


# ---- WebP, BMP, TIFF -------------------------------------------------------------------------


def _read_webp(data: bytes) -> ImageHeader:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise UnreadableImage("header_unreadable", "the WebP VP8 frame has no start code")
        width, height = struct.unpack_from("<HH", data, 26)
        return ImageHeader("webp", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L":
        if data[20:21] != b"\x2f":
            raise UnreadableImage("header_unreadable", "the WebP VP8L stream has no signature")
        (bits,) = struct.unpack_from("<I", data, 21)
        return ImageHeader("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        size = data[24:30]
        if len(size) < 6:
            raise struct.error("short VP8X chunk")
        width = int.from_bytes(size[:3], "little") + 1
        height = int.from_bytes(size[3:], "little") + 1
        return ImageHeader("webp", width, height)
    raise UnreadableImage("header_unreadable", f"unknown WebP chunk {chunk!r}")


def _read_bmp(data: bytes) -> ImageHeader:
    (dib_size,) = struct.unpack_from("<I", data, 14)
    if dib_size == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack_from("<HH", data, 18)
    else:
        width, height = struct.unpack_from("<ii", data, 18)
    # a negative height means the rows are stored top-down
    return ImageHeader("bmp", width, abs(height))


def _read_tiff(data: bytes) -> ImageHeader:
    tags = _tiff_ifd0(data)
    if _TIFF_WIDTH not in tags or _TIFF_HEIGHT not in tags:
        raise UnreadableImage("header_unreadable", "the TIFF's first IFD has no image size")
    orientation = tags.get(_TIFF_ORIENTATION, 1)
    return ImageHeader(
        "tiff",
        tags[_TIFF_WIDTH],
        tags[_TIFF_HEIGHT],
        tags.get(_TIFF_SAMPLES),
        orientation if 1 <= orientation <= 8 else 1,
    )


def _tiff_ifd0(tiff: bytes) -> dict[int, int]:
    """The single-valued SHORT and LONG tags of a TIFF structure's first IFD (also EXIF's)."""
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        raise UnreadableImage("header_unreadable", "the TIFF structure has no byte-order mark")
    magic, offset = struct.unpack_from(order + "HI", tiff, 2)
    if magic != 42:
        raise UnreadableImage("header_unreadable", "the TIFF structure has the wrong magic number")
    (count,) = struct.unpack_from(order + "H", tiff, offset)
    tags: dict[int, int] = {}
    for entry in range(offset + 2, offset + 2 + 12 * count, 12):
        tag, kind, values = struct.unpack_from(order + "HHI", tiff, entry)
        if values != 1:
            continue
        if kind == 3:  # SHORT, left-aligned in the 4-byte value field
            tags[tag] = struct.unpack_from(order + "H", tiff, entry + 8)[0]
        elif kind == 4:  # LONG
            tags[tag] = struct.unpack_from(order + "I", tiff, entry + 8)[0]
    return tags


_HEADER_READERS = {
    "jpeg": _read_jpeg,
    "png": _read_png,
    "webp": _read_webp,
    "bmp": _read_bmp,
    "tiff": _read_tiff,
}
