"""Streaming SHA-256 of files for ``conveyor upload``."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import IO

import pytest

from conveyor_cli import upload
from conveyor_cli.upload import CHUNK_SIZE, LocalFile, hash_files, sha256_file, sha256_stream


class RecordingReader:
    """A stream that records every read size it is asked for."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)
        self.requests: list[int] = []

    def read(self, size: int = -1, /) -> bytes:
        self.requests.append(size)
        return self._buf.read(size)


def test_chunk_size_is_one_mebibyte() -> None:
    assert CHUNK_SIZE == 1024 * 1024


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, 2 * CHUNK_SIZE + 12345])
def test_sha256_file_matches_hashlib(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_stream_is_read_in_bounded_chunks_never_whole() -> None:
    data = os.urandom(10 * 1000 + 7)
    reader = RecordingReader(data)
    seen: list[int] = []

    digest = sha256_stream(reader, chunk_size=1000, on_bytes=seen.append)

    assert digest == hashlib.sha256(data).hexdigest()
    # Every read asks for exactly one chunk (never -1 = "everything").
    assert reader.requests and set(reader.requests) == {1000}
    assert seen == [1000] * 10 + [7]


def test_sha256_file_reads_the_file_in_1mib_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.bin"
    data = os.urandom(3 * CHUNK_SIZE + 5)
    path.write_bytes(data)
    requested: list[int] = []
    real_open = open

    class Spy:
        def __init__(self, fh: IO[bytes]) -> None:
            self._fh = fh

        def read(self, size: int = -1, /) -> bytes:
            requested.append(size)
            return self._fh.read(size) or b""

        def __enter__(self) -> Spy:
            return self

        def __exit__(self, *exc: object) -> None:
            self._fh.close()

    def spy_open(file: Path, mode: str = "r", buffering: int = -1) -> Spy:
        return Spy(real_open(file, mode, buffering=buffering))

    monkeypatch.setattr(upload, "open", spy_open, raising=False)

    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert requested and max(requested) == CHUNK_SIZE and min(requested) > 0


def test_hash_files_keeps_order_reports_progress_and_unreadable_files(tmp_path: Path) -> None:
    files: list[LocalFile] = []
    contents: list[bytes] = []
    for i in range(12):
        data = os.urandom(1000 * (i + 1))
        path = tmp_path / f"f{i:02d}.bin"
        path.write_bytes(data)
        files.append(LocalFile(path, len(data)))
        contents.append(data)
    gone = LocalFile(tmp_path / "deleted.bin", 10)  # listed, then removed before hashing
    files.insert(5, gone)
    progressed: list[int] = []

    hashed, failed = hash_files(files, workers=4, chunk_size=4096, on_bytes=progressed.append)

    assert [h.path for h in hashed] == [f.path for f in files if f is not gone]
    assert [h.sha256 for h in hashed] == [hashlib.sha256(c).hexdigest() for c in contents]
    assert [h.size for h in hashed] == [len(c) for c in contents]
    assert sum(progressed) == sum(len(c) for c in contents)
    assert len(failed) == 1
    assert failed[0].path == gone.path
    assert failed[0].error.startswith("cannot read file")
