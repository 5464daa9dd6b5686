"""Generated test media: real encoded images and videos, made on the spot (nothing downloaded)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

_rng = np.random.default_rng()


def image(width: int = 64, height: int = 48, ext: str = ".jpg", seed: int | None = None) -> bytes:
    """A unique (random) image encoded in the format of ``ext``."""
    rng = np.random.default_rng(seed) if seed is not None else _rng
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(ext, pixels)
    assert ok
    return bytes(encoded.tobytes())


def video(fourcc: str = "mp4v", ext: str = ".mp4", frames: int = 5) -> bytes:
    """A short real video written by OpenCV."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"clip{ext}"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), 10.0, (64, 48))
        assert writer.isOpened(), f"OpenCV cannot write {fourcc}{ext}"
        for i in range(frames):
            frame = np.full((48, 64, 3), i * 40 % 256, dtype=np.uint8)
            writer.write(frame)
        writer.release()
        return path.read_bytes()
