"""Generated test videos: pictures and clips encoded with PyAV on the spot (nothing downloaded).

Shared by the video-check unit tests and the clean benchmark's video corpus
(bench/clean_video.py). Pictures are RGB arrays; the default moving picture is a grid of
coloured 20-pixel blocks sliding 2 pixels a frame, so consecutive frames differ by about 5 luma
levels on the checks' 64 x 64 thumbnail, a still picture by under 0.3, and a cut by 50+.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from numpy.typing import NDArray

Pixels = NDArray[np.uint8]
WIDTH, HEIGHT, RATE = 160, 120, 25


def scene(frame: int, seed: int = 1, width: int = WIDTH, height: int = HEIGHT) -> Pixels:
    """Frame ``frame`` of a moving picture: a grid of coloured blocks sliding right."""
    rows, cols = -(-height // 20), -(-width // 20)
    blocks = np.random.default_rng(seed).integers(0, 256, (rows, cols, 3))
    picture = np.repeat(np.repeat(blocks.astype(np.uint8), 20, axis=0), 20, axis=1)
    return np.ascontiguousarray(np.roll(picture, 2 * frame, axis=1)[:height, :width])


def moving(seconds: float, rate: float = RATE, seed: int = 1) -> list[Pixels]:
    """``seconds`` of :func:`scene` at ``rate`` frames per second."""
    return [scene(frame, seed) for frame in range(round(seconds * rate))]


def landscape(width: int, height: int, seed: int = 1) -> Pixels:
    """A smooth photo-like picture: random colours every 40 pixels, interpolated between."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 40 + 2, width // 40 + 2, 3)).astype(np.uint8)
    return np.ascontiguousarray(cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC))


def walker(frame: int, width: int = 320, height: int = 240) -> Pixels:
    """A static camera on a still scene that a person-sized subject (a tenth of the width, a
    third of the height, mid-grey) crosses at 1 % of the width per frame."""
    picture = landscape(width, height)
    left, top, subject_w, subject_h = (
        width // 20 + width * frame // 100,
        height // 2,
        width // 10,
        height // 3,
    )
    picture[top : top + subject_h, left : left + subject_w] = 128
    return picture


def pan(frame: int, width: int = 320, height: int = 240) -> Pixels:
    """A camera panning at 1 % of the width per frame across a mostly flat scene (a pale wall
    with a few sharp-edged objects), where a whole-picture mean barely moves."""
    scenery = (landscape(2 * width, height, seed=2) // 8 + 110).astype(np.uint8)
    rng = np.random.default_rng(3)
    for _ in range(6):
        x, y = int(rng.integers(0, 2 * width - 40)), int(rng.integers(0, height - 40))
        scenery[y : y + int(rng.integers(10, 40)), x : x + int(rng.integers(5, 40))] = rng.integers(
            0, 256, 3
        )
    left = width * frame // 100
    return np.ascontiguousarray(scenery[:, left : left + width])


def with_clock(picture: Pixels, second: int) -> Pixels:
    """``picture`` with a small white ``12:00:SS`` clock burnt into its top-left corner."""
    stamped = picture.copy()
    cv2.putText(
        stamped, f"12:00:{second:02d}", (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1
    )
    return stamped


def flat(level: int | tuple[int, int, int], width: int = WIDTH, height: int = HEIGHT) -> Pixels:
    """A picture of one grey level (0 is black) or one RGB colour."""
    return np.full((height, width, 3), level, dtype=np.uint8)


def marked() -> Pixels:
    """Black with a white block in the top-left corner, to tell which way a picture is turned."""
    picture = flat(0)
    picture[:30, :40] = 255
    return picture


def write_clip(
    path: Path,
    pictures: Iterable[Pixels],
    *,
    rate: int | Fraction = RATE,
    codec: str = "mpeg4",
    bit_rate: int = 2_000_000,
    pts_ms: Sequence[int] | None = None,
    options: dict[str, str] | None = None,
    rotation: int = 0,
    audio_seconds: float = 0.0,
) -> Path:
    """Encode ``pictures`` (all of one size) at ``rate`` fps, or at millisecond timestamps.

    ``pts_ms`` gives each frame its own time (variable frame rate, 1/1000 time base);
    ``options`` go to the muxer (``{"movflags": "faststart"}``); ``audio_seconds`` adds a
    silent AAC track of that length.
    """
    frames = iter(pictures)
    first = next(frames)
    height, width = first.shape[:2]
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream(codec, rate=rate)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        # at the default 200 kb/s a key frame re-encodes a still picture 2 levels away from the
        # P-frames before it; real footage at real sizes stays well under the 1.0 tolerance
        stream.bit_rate = bit_rate
        if rotation:
            stream.set_display_rotation(rotation)
        if pts_ms is not None:
            stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        audio = container.add_stream("aac", rate=8000) if audio_seconds else None
        assert audio is None or isinstance(audio, av.AudioStream)
        for index, picture in enumerate(itertools.chain([first], frames)):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[index], Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
        if audio is not None:
            _encode_silence(container, audio, audio_seconds)
    return path


def write_audio(path: Path, seconds: float = 0.5, codec: str = "aac") -> Path:
    """Silence in ``codec`` (half a second of AAC by default): a media file with no video."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=8000)
        assert isinstance(stream, av.AudioStream)
        _encode_silence(container, stream, seconds)
    return path


def _encode_silence(
    container: av.container.OutputContainer, stream: av.AudioStream, seconds: float
) -> None:
    # PyAV resamples to the encoder's sample format, layout and frame size
    for index in range(max(1, round(seconds * 8000 / 1024))):
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate, frame.pts = 8000, index * 1024
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def write_repeated_timestamp(
    path: Path,
    pictures: Sequence[Pixels] | None = None,
    repeat_at: Sequence[int] = (20,),
) -> Path:
    """A Matroska clip in which each packet listed in ``repeat_at`` repeats its predecessor's time.

    Encoders refuse such frames, so the packets are edited on their way to the muxer; Matroska
    accepts equal (not decreasing) timestamps. By default 2 s of :func:`moving` whose 21st
    packet repeats the 20th's timestamp.
    """
    pictures = moving(2) if pictures is None else pictures
    height, width = pictures[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=RATE)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        packets = []
        for index, picture in enumerate(pictures):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            packets += stream.encode(frame)
        packets += stream.encode()
        for index, packet in enumerate(packets):
            if index in repeat_at:
                assert packet.pts is not None
                packet.pts = packet.dts = packet.pts - 1
            container.mux(packet)
    return path


def overwrite(source: Path, target: Path, at: float, length: int, seed: int = 0) -> Path:
    """A copy of ``source`` at ``target`` with ``length`` random bytes (from ``seed``) written
    over it at ``at`` (a fraction of its size): damage in the middle of an encoded file."""
    data = bytearray(source.read_bytes())
    start = int(len(data) * at)
    data[start : start + length] = np.random.default_rng(seed).bytes(length)
    target.write_bytes(bytes(data))
    return target
