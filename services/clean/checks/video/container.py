"""A video file's container structure, read from its own size fields before FFmpeg sees it.

MP4/MOV boxes, Matroska/WebM EBML elements and AVI RIFF chunks are walked a few bytes at a time
(``truncated``, ``missing_index``, ``empty``); a Matroska file's cluster byte ranges are where
its frames are, and :class:`PacketCoverage` tells during the decode pass which of those bytes the
demuxer never delivered.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import BinaryIO

from services.clean.checks.thresholds import CheckResult

VideoSource = str | os.PathLike[str] | BinaryIO
"""A local file path, or a readable and seekable binary file object positioned anywhere."""


# Unread frame bytes: inside a Matroska cluster, the bytes between one packet and the next are
# element headers (cluster, block group, block: 20-25 bytes in the files FFmpeg writes, about 120
# at most without block additions). A damaged block header makes the demuxer give up on the rest
# of its cluster, or on the rest of the file, without an error reaching the caller; a stretch of
# more than this many cluster bytes that no packet covers is such a skip.
MIN_UNREAD_BYTES = 512


# Top-level boxes an MP4/MOV file may start with (QuickTime files may lack ``ftyp``).
_MP4_FIRST_BOXES = frozenset({b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"})
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_MATROSKA_SEGMENT = b"\x18\x53\x80\x67"
_MATROSKA_CLUSTER = b"\x1f\x43\xb6\x75"

ReadAt = Callable[[int, int], bytes]


def container_problems(source: VideoSource) -> list[CheckResult]:
    """Structural defects found from the container's own size fields, each as a failed check.

    Reads a few bytes per top-level element: an MP4/MOV box or AVI RIFF chunk that runs past the
    end of the file, a Matroska segment longer than the file (``truncated``), an MP4 without its
    ``moov`` index (``missing_index``), an empty file (``empty``). Other formats are left to the
    decoder. An empty list means nothing is known to be wrong.
    """
    with _byte_reader(source) as (read_at, size):
        if size == 0:
            return [CheckResult("empty", False, 0.0, None, "the file is empty (zero bytes)")]
        head = read_at(0, 12)
        if head[4:8] in _MP4_FIRST_BOXES:
            return _mp4_problems(read_at, size)
        if head.startswith(_EBML_MAGIC):
            return _matroska_problems(read_at, size)
        if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
            return _avi_problems(read_at, size)
        return []


def _truncated(container: str, declared_end: int, size: int) -> CheckResult:
    return CheckResult(
        "truncated",
        False,
        float(size),
        float(declared_end),
        f"the {container} structure declares {declared_end} bytes but the file has {size}",
    )


def _mp4_problems(read_at: ReadAt, size: int) -> list[CheckResult]:
    problems: list[CheckResult] = []
    boxes: set[bytes] = set()
    position = 0
    while position + 8 <= size:
        header = read_at(position, 16)
        box_size, kind = struct.unpack_from(">I4s", header)
        header_size = 8
        if box_size == 1:  # 64-bit size follows the type
            if len(header) < 16:
                problems.append(_truncated("MP4", position + 16, size))
                break
            (box_size,) = struct.unpack_from(">Q", header, 8)
            header_size = 16
        elif box_size == 0:  # the last box runs to the end of the file
            box_size = size - position
        if box_size < header_size:
            break  # not a box boundary; the decoder will say what is wrong
        boxes.add(kind)
        if position + box_size > size:
            problems.append(_truncated("MP4", position + box_size, size))
            break
        position += box_size
    if b"moov" not in boxes:
        # the sample index is written last by most muxers, so an interrupted upload loses it
        problems.insert(
            0,
            CheckResult(
                "missing_index",
                False,
                None,
                None,
                "the MP4 has no moov box (its sample index), so its frames cannot be located",
            ),
        )
    return problems


def _matroska_problems(read_at: ReadAt, size: int) -> list[CheckResult]:
    header_end = _ebml_element_end(read_at, 0)
    if header_end is None or read_at(header_end, 4) != _MATROSKA_SEGMENT:
        return []
    segment_end = _ebml_element_end(read_at, header_end)
    if segment_end is not None and segment_end > size:
        return [_truncated("Matroska", segment_end, size)]
    return []


def matroska_clusters(source: VideoSource) -> tuple[tuple[int, int], ...] | None:
    """The byte ranges (start, end) of a Matroska/WebM file's clusters, where its frames are.

    Walks the segment's top-level elements by their size fields. Where the walk meets bytes that
    are not an element, or an element running past the segment, the structure is damaged and the
    rest of the segment is taken as cluster bytes (frames the demuxer should have read). None
    for other formats and for elements of unknown size (live recordings), whose layout only a
    full parse would give.
    """
    with _byte_reader(source) as (read_at, size):
        if read_at(0, 4) != _EBML_MAGIC:
            return None
        header_end = _ebml_element_end(read_at, 0)
        segment = None if header_end is None else _ebml_element(read_at, header_end)
        if segment is None or segment[0] != _MATROSKA_SEGMENT:
            return None
        _, position, segment_end = segment
        if segment_end is None:
            return None
        end = min(segment_end, size)
        clusters: list[tuple[int, int]] = []
        while position < end:
            element = _ebml_element(read_at, position)
            if element is None or (element[2] is not None and element[2] > end):
                clusters.append((position, end))
                break
            kind, _, element_end = element
            if element_end is None:
                return None
            if kind == _MATROSKA_CLUSTER:
                clusters.append((position, element_end))
            position = element_end
        return tuple(clusters)


def _ebml_element_end(read_at: ReadAt, position: int) -> int | None:
    """Where the EBML element at ``position`` ends; None for an unknown size or bad header."""
    element = _ebml_element(read_at, position)
    return None if element is None else element[2]


def _ebml_element(read_at: ReadAt, position: int) -> tuple[bytes, int, int | None] | None:
    """The EBML element at ``position``: its ID, where its data starts and where it ends (None
    for an unknown size); None when the bytes there are not an element header."""
    head = read_at(position, 12)
    if not head:
        return None
    id_length = _vint_length(head[0])
    if id_length is None or id_length > 4 or len(head) < id_length + 1:
        return None
    size_length = _vint_length(head[id_length])
    if size_length is None or len(head) < id_length + size_length:
        return None
    data_start = position + id_length + size_length
    raw = int.from_bytes(head[id_length : id_length + size_length], "big")
    value = raw & ((1 << (7 * size_length)) - 1)
    if value == (1 << (7 * size_length)) - 1:  # all ones: size unknown (live streams)
        return head[:id_length], data_start, None
    return head[:id_length], data_start, data_start + value


def _vint_length(first_byte: int) -> int | None:
    """The length of an EBML variable-size integer from its first byte (leading zero bits + 1)."""
    if first_byte == 0:
        return None
    return 9 - first_byte.bit_length()


def _avi_problems(read_at: ReadAt, size: int) -> list[CheckResult]:
    # files over 1 GB (OpenDML) chain several RIFF chunks; each one's size is checked
    position = 0
    while position + 8 <= size:
        kind, chunk_size = struct.unpack("<4sI", read_at(position, 8))
        if kind != b"RIFF":
            break
        end = position + 8 + chunk_size + (chunk_size & 1)
        if end > size:
            return [_truncated("AVI RIFF", end, size)]
        position = end
    return []


@contextmanager
def _byte_reader(source: VideoSource) -> Iterator[tuple[ReadAt, int]]:
    """Random access to the source's bytes and its size, without reading it whole."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as file:
            yield _reader_of(file), os.fstat(file.fileno()).st_size
        return
    size = source.seek(0, os.SEEK_END)
    try:
        yield _reader_of(source), size
    finally:
        source.seek(0)


def _reader_of(file: BinaryIO) -> ReadAt:
    def read_at(offset: int, length: int) -> bytes:
        file.seek(offset)
        return file.read(length)

    return read_at


def known_container(source: VideoSource) -> bool:
    """Whether the file starts like an MP4/MOV, Matroska/WebM or RIFF container, so that FFmpeg
    failing to open it means a damaged file rather than an unknown format."""
    with _byte_reader(source) as (read_at, _):
        head = read_at(0, 12)
    return head[4:8] in _MP4_FIRST_BOXES or head.startswith(_EBML_MAGIC) or head.startswith(b"RIFF")


class PacketCoverage:
    """Which bytes of a file's frame area (Matroska clusters) the demuxer delivered as packets.

    Folds packets one at a time, in the order the demuxer reads them, from their byte position
    and size; laced packets (several frames in one block) share a position and are summed. Keeps
    only the stretches longer than ``min_bytes``, so memory does not grow with the file.
    """

    def __init__(
        self, clusters: Sequence[tuple[int, int]], min_bytes: int = MIN_UNREAD_BYTES
    ) -> None:
        self.clusters = tuple(clusters)
        self.min_bytes = min_bytes
        self.known = bool(self.clusters)
        self._covered_to = self.clusters[0][0] if self.clusters else 0
        self._block: tuple[int, int] = (-1, 0)
        self._gaps: list[tuple[int, int]] = []

    def add(self, position: int | None, size: int) -> None:
        """A packet of ``size`` bytes read at ``position`` (None or -1: the demuxer did not say)."""
        if size <= 0:
            return
        if position is None or position < 0:
            self.known = False  # a gap could no longer be told from a packet
            return
        start, length = self._block
        if position == start:
            length += size
        else:
            self._gap_until(position)
            start, length = position, size
        self._block = (start, length)
        self._covered_to = max(self._covered_to, start + length)

    def unread(self) -> list[tuple[int, int]]:
        """The stretches (start, end) of cluster bytes longer than ``min_bytes`` that no packet
        covers, the end of the last cluster included; none when a position was unknown."""
        if not self.known:
            return []
        stretches = [*self._gaps]
        if self.clusters[-1][1] - self._covered_to > self.min_bytes:
            stretches.append((self._covered_to, self.clusters[-1][1]))
        return [gap for gap in stretches if self._cluster_bytes(*gap) > self.min_bytes]

    def _gap_until(self, position: int) -> None:
        if position - self._covered_to > self.min_bytes:
            self._gaps.append((self._covered_to, position))

    def _cluster_bytes(self, start: int, end: int) -> int:
        return sum(max(0, min(end, last) - max(start, first)) for first, last in self.clusters)
