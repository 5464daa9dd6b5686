"""One PyAV decode pass: open a video, read what it declares, and reduce each frame as it
arrives to a :class:`DecodedFrame` (thumbnails), or to a JPEG for a sampled frame."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import BinaryIO

import av
import av.error
import cv2
import numpy as np
from av.codec.context import ThreadType
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.reformatter import Interpolation, VideoReformatter
from av.video.stream import VideoStream
from numpy.typing import NDArray

from services.clean.checks.thresholds import UnreadableMedia
from services.clean.checks.video.container import PacketCoverage, VideoSource, known_container
from services.clean.checks.video.frame_scan import (
    THUMBNAIL_SIDE,
    DecodedFrame,
    PictureTolerance,
    VideoScan,
    summarize_frames,
)
from services.clean.checks.video.ghosts import DETAIL_ROWS, DETAIL_WIDTH
from services.clean.checks.video.interruptions import TimeRanges


class UnreadableVideo(UnreadableMedia):
    """The file cannot be read as a video, or not completely; ``code`` says which way."""


@dataclass(frozen=True)
class VideoProbe:
    """What the container declares about its first video stream, before any frame is decoded.

    ``frame_count`` is None where the container does not store it (Matroska, WebM);
    ``duration_seconds`` is the stream's duration, else the container's; ``frame_rate`` is the
    stream's base (nominal) rate in frames per second.
    """

    width: int
    height: int
    duration_seconds: float | None
    frame_count: int | None
    frame_rate: float | None


@contextmanager
def open_video(source: VideoSource) -> Iterator[tuple[InputContainer, VideoStream]]:
    """The opened container and its first video stream; a file object is read from its start."""
    if isinstance(source, str | os.PathLike):
        target: str | BinaryIO = os.fspath(source)
    else:
        source.seek(0)
        target = source
    try:
        container = av.open(target, mode="r")
    except av.error.FFmpegError as error:
        code = "decode_failed" if known_container(source) else "unrecognized_format"
        raise UnreadableVideo(code, f"FFmpeg cannot open the file: {error.strerror}") from None
    with container:
        if not container.streams.video:
            kinds = " and ".join(sorted({stream.type for stream in container.streams})) or "no"
            raise UnreadableVideo("no_video_stream", f"the file has {kinds} streams but no video")
        stream = container.streams.video[0]
        # frame threads make the single decode pass use every core
        stream.thread_type = ThreadType.AUTO
        yield container, stream


def probe_stream(container: InputContainer, stream: VideoStream) -> VideoProbe:
    """What the container declares about the stream, read without decoding any frame."""
    duration: float | None = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    return VideoProbe(
        width=stream.codec_context.width,
        height=stream.codec_context.height,
        duration_seconds=duration,
        frame_count=stream.frames or None,
        frame_rate=float(stream.base_rate) if stream.base_rate else None,
    )


def scan_stream(
    container: InputContainer,
    stream: VideoStream,
    clusters: Sequence[tuple[int, int]] | None,
    duplicate_tolerance: PictureTolerance,
    frozen_tolerance: PictureTolerance,
    min_frozen_seconds: float,
) -> VideoScan:
    """Decode every frame once and measure timing, repeated pictures and black or blank frames.

    A damaged stretch is counted in ``decode_errors`` and skipped, so a truncated file is scanned
    up to where it ends; so is a stretch of a Matroska file's ``clusters`` the demuxer skipped
    without saying (:class:`PacketCoverage`). Raises :class:`UnreadableVideo` when not one frame
    decodes.
    """
    errors: list[str] = []
    error_times = TimeRanges()
    coverage = PacketCoverage(clusters or ())
    reformatter, detailer = VideoReformatter(), VideoReformatter()
    scan = summarize_frames(
        (
            _observed(index, frame, reformatter, detailer)
            for index, frame in enumerate(
                decoded_frames(container, stream, errors, coverage, error_times)
            )
        ),
        duplicate_tolerance,
        frozen_tolerance,
        min_frozen_seconds,
    )
    unread = coverage.unread()
    errors += [
        f"bytes {start}-{end} of the frames were never read (the demuxer skipped them)"
        for start, end in unread
    ]
    if scan.decoded_frames == 0:
        detail = f": {errors[0]}" if errors else ""
        raise UnreadableVideo("decode_failed", f"no frame of the video decodes{detail}")
    ranges = dict(scan.ranges)
    if error_times.kept:
        ranges["decode_errors"] = error_times.ranges()
    return replace(scan, decode_errors=len(errors), unread_stretches=tuple(unread), ranges=ranges)


def decoded_frames(
    container: InputContainer,
    stream: VideoStream,
    errors: list[str],
    coverage: PacketCoverage | None = None,
    error_times: TimeRanges | None = None,
) -> Iterator[VideoFrame]:
    """Every decodable frame in presentation order; each failure is appended to ``errors``.

    A packet the decoder refuses is skipped and decoding carries on; a demuxer failure ends the
    stream, since nothing after it can be located. Every packet read, of any stream, is added to
    ``coverage``; the time of each failure that has one to ``error_times``.
    """
    where = error_times if error_times is not None else TimeRanges()
    packets = container.demux()
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.error.FFmpegError as error:
            errors.append(f"demuxing stopped: {error.strerror}")
            break
        if coverage is not None:
            coverage.add(packet.pos, packet.size)
        # not ``stream_index``: the empty packets that flush each stream at the end all read 0
        if packet.stream is not stream:
            continue
        try:
            frames = stream.decode(packet)  # an empty packet at the end flushes the decoder
        except av.error.FFmpegError as error:
            errors.append(f"packet at {packet.pts}: {error.strerror}")
            if packet.pts is not None and packet.time_base is not None:
                where.add(float(packet.pts * packet.time_base), None)
            continue
        for frame in frames:
            if frame.is_corrupt:
                errors.append(f"frame at {frame.pts} decoded with errors")
                where.add(frame.time, None)
            yield frame


def _observed(
    index: int, frame: VideoFrame, reformatter: VideoReformatter, detailer: VideoReformatter
) -> DecodedFrame:
    duration = None
    if frame.duration and frame.time_base is not None:
        duration = float(frame.duration * frame.time_base)
    thumbnail = thumbnail_of(frame, reformatter)
    return DecodedFrame(index, frame.time, duration, thumbnail, detail_of(frame, detailer))


# 8-bit pixel formats whose first plane is the luma at full size, and whether it is full range
_LUMA_PLANES = {
    "yuv420p": False,
    "yuv422p": False,
    "yuv444p": False,
    "nv12": False,
    "yuvj420p": True,
    "yuvj422p": True,
    "yuvj444p": True,
}


def detail_of(frame: VideoFrame, reformatter: VideoReformatter) -> NDArray[np.uint8]:
    """The frame's luma at DETAIL_WIDTH columns (fewer if narrower) by every row of the band of
    DETAIL_ROWS across its middle, what the ghost checks use: only columns are averaged, so the
    two fields stay apart.

    Read straight from the luma plane where the format has one (a view, the band alone
    resized: a fraction of a full swscale pass), limited range mapped to 0-255 as swscale does;
    other formats go through swscale whole.
    """
    full_range = _LUMA_PLANES.get(frame.format.name)
    width = min(DETAIL_WIDTH, frame.width)
    if full_range is None:
        small = reformatter.reformat(
            frame, width=width, height=frame.height, format="gray", interpolation=Interpolation.AREA
        )
        return np.asarray(small.to_ndarray(), dtype=np.uint8)
    plane = frame.planes[0]
    luma = np.frombuffer(memoryview(plane), np.uint8, count=plane.line_size * frame.height)
    rows = luma.reshape(frame.height, plane.line_size)[:, : frame.width]
    top = max(0, (frame.height - DETAIL_ROWS) // 4 * 2)
    band = rows[top : top + DETAIL_ROWS]
    detail = cv2.resize(band, (width, len(band)), interpolation=cv2.INTER_AREA)
    if not full_range:
        detail = cv2.convertScaleAbs(detail, alpha=255 / 219, beta=-16 * 255 / 219)
    return np.asarray(detail, dtype=np.uint8)


def thumbnail_of(frame: VideoFrame, reformatter: VideoReformatter) -> NDArray[np.uint8]:
    """The frame's luma at THUMBNAIL_SIDE x THUMBNAIL_SIDE, what every picture comparison uses."""
    # swscale scales and converts in one step and maps limited-range luma to 0-255; one
    # reformatter per pass keeps its scaler context, which is most of the per-frame cost
    small = reformatter.reformat(
        frame,
        width=THUMBNAIL_SIDE,
        height=THUMBNAIL_SIDE,
        format="gray",
        interpolation=Interpolation.AREA,
    )
    return np.asarray(small.to_ndarray(), dtype=np.uint8)


def jpeg_of(frame: VideoFrame, quality: int) -> bytes:
    """The frame as a JPEG for labeling, turned upright by the stream's display rotation."""
    pixels = np.asarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8)
    # the display matrix says how far to turn the stored picture counter-clockwise
    quarter_turns = round(frame.rotation / 90) % 4
    if quarter_turns:
        pixels = np.ascontiguousarray(np.rot90(pixels, quarter_turns))
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise UnreadableVideo("decode_failed", "a decoded frame could not be encoded as JPEG")
    return bytes(encoded.tobytes())
