"""The concurrent upload engine and lookup batching, driven by an in-process fake uploader."""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path

import pytest

from conveyor_cli.client import ApiError, Asset, ServiceUnreachable
from conveyor_cli.upload import (
    LOOKUP_BATCH,
    HashedFile,
    RetryPolicy,
    find_known,
    guess_media_type,
    upload_files,
)

FAST = RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0)


def _asset(name: str, duplicate: bool = False) -> Asset:
    return {
        "id": f"id-{name}",
        "dataset_slug": "cars",
        "filename": name,
        "media_type": "image/jpeg",
        "size_bytes": 1,
        "sha256": "0" * 64,
        "source": "upload",
        "uploaded_by": "k",
        "tags": [],
        "created_at": "2026-01-01T00:00:00Z",
        "duplicate": duplicate,
    }


def _err(status: int, code: str = "x") -> ApiError:
    return ApiError(service="ingest", status=status, code=code, message=f"status {status}")


class FakeUploader:
    """Scripted answers per filename; records attempts, bodies and concurrency."""

    def __init__(self, script: dict[str, list[Exception | str]] | None = None) -> None:
        self.script = script or {}
        self.attempts: dict[str, int] = {}
        self.bodies: dict[str, bytes] = {}
        self.calls: list[tuple[str, str, str, list[str]]] = []
        self.inflight = 0
        self.max_inflight = 0

    async def upload_asset(
        self, slug: str, *, filename: str, stream: io.FileIO, media_type: str, tags: list[str]
    ) -> Asset:
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            self.attempts[filename] = self.attempts.get(filename, 0) + 1
            self.calls.append((slug, filename, media_type, tags))
            # Read like httpx does: seek(0) then fixed-size chunks.
            stream.seek(0)
            body = b"".join(iter(lambda: stream.read(64 * 1024), b""))
            await asyncio.sleep(0.005)
            steps = self.script.get(filename, [])
            step = steps.pop(0) if steps else "ok"
            if isinstance(step, Exception):
                raise step
            self.bodies[filename] = body
            return _asset(filename, duplicate=step == "dup")
        finally:
            self.inflight -= 1


def _files(tmp_path: Path, n: int, size: int = 100) -> list[HashedFile]:
    out = []
    for i in range(n):
        data = bytes([i % 256]) * size
        path = tmp_path / f"f{i:03d}.jpg"
        path.write_bytes(data)
        out.append(HashedFile(path, size, hashlib.sha256(data).hexdigest()))
    return out


async def test_uploads_everything_with_bounded_concurrency(tmp_path: Path) -> None:
    files = _files(tmp_path, 20, size=70_000)
    fake = FakeUploader({"f003.jpg": ["dup"]})
    progressed: list[int] = []
    done: list[HashedFile] = []

    result = await upload_files(
        fake,
        "cars",
        files,
        tags=["a", "b"],
        concurrency=4,
        retry=FAST,
        on_bytes=progressed.append,
        on_done=done.append,
    )

    assert len(result.uploaded) == 19
    assert [d.file.path.name for d in result.duplicates] == ["f003.jpg"]
    assert result.failed == []
    assert 2 <= fake.max_inflight <= 4
    assert sorted(done, key=lambda f: f.path) == files
    # Bodies are the files' bytes, and the byte counter covers exactly the data sent.
    assert all(fake.bodies[f.path.name] == f.path.read_bytes() for f in files)
    assert sum(progressed) == sum(f.size for f in files)
    assert {c[3] == ["a", "b"] and c[0] == "cars" for c in fake.calls} == {True}


async def test_transient_failures_are_retried_then_succeed(tmp_path: Path) -> None:
    files = _files(tmp_path, 3)
    unreachable = ServiceUnreachable(service="ingest", url="u", reason="r", connect=False)
    fake = FakeUploader({"f000.jpg": [_err(503), _err(502)], "f001.jpg": [unreachable]})
    progressed: list[int] = []

    result = await upload_files(
        fake, "cars", files, concurrency=2, retry=FAST, on_bytes=progressed.append
    )

    assert fake.attempts == {"f000.jpg": 3, "f001.jpg": 2, "f002.jpg": 1}
    assert len(result.uploaded) == 3 and result.failed == []
    assert result.retries == 3
    # Bytes of failed attempts are taken back, so progress still totals each file once.
    assert sum(progressed) == sum(f.size for f in files)


async def test_gives_up_after_three_attempts(tmp_path: Path) -> None:
    files = _files(tmp_path, 1)
    fake = FakeUploader({"f000.jpg": [_err(504, "gateway_timeout")] * 5})

    result = await upload_files(fake, "cars", files, retry=FAST)

    assert fake.attempts == {"f000.jpg": 3}
    assert [f.error for f in result.failed] == ["gateway_timeout: status 504 (after 3 attempts)"]


@pytest.mark.parametrize("status", [400, 404, 409, 413, 415, 422, 500])
async def test_client_errors_and_500_are_not_retried(tmp_path: Path, status: int) -> None:
    files = _files(tmp_path, 2)
    fake = FakeUploader({"f000.jpg": [_err(status, "nope")]})

    result = await upload_files(fake, "cars", files, concurrency=1, retry=FAST)

    assert fake.attempts == {"f000.jpg": 1, "f001.jpg": 1}
    assert [(f.path.name, f.error) for f in result.failed] == [
        ("f000.jpg", f"nope: status {status}")
    ]
    assert len(result.uploaded) == 1


async def test_auth_failure_stops_the_run(tmp_path: Path) -> None:
    files = _files(tmp_path, 10)
    fake = FakeUploader({"f000.jpg": [_err(403, "forbidden")]})

    result = await upload_files(fake, "cars", files, concurrency=1, retry=FAST)

    assert fake.attempts == {"f000.jpg": 1}  # nothing else was sent
    assert len(result.failed) == 10
    assert result.aborted == "forbidden: status 403"
    assert result.failed[1].error == "not attempted: forbidden: status 403"


async def test_file_that_vanished_fails_alone(tmp_path: Path) -> None:
    files = _files(tmp_path, 2)
    files[0].path.unlink()
    fake = FakeUploader()

    result = await upload_files(fake, "cars", files, retry=FAST)

    assert [f.path for f in result.failed] == [files[0].path]
    assert result.failed[0].error.startswith("cannot read file")
    assert len(result.uploaded) == 1


async def test_no_files_is_a_no_op() -> None:
    result = await upload_files(FakeUploader(), "cars", [], retry=FAST)
    assert (result.uploaded, result.duplicates, result.failed) == ([], [], [])


def test_find_known_batches_at_most_1000_unique_hashes() -> None:
    hashes = [f"{i:064x}" for i in range(2500)] + ["0" * 64]  # one repeat
    batches: list[list[str]] = []

    def lookup(batch: list[str]) -> dict[str, str]:
        batches.append(batch)
        # The server also echoes a hash we never asked about; it must be ignored.
        return {h: f"asset-{h[-3:]}" for h in batch if int(h, 16) % 2 == 0} | {"f" * 64: "x"}

    known = find_known(lookup, hashes)

    assert [len(b) for b in batches] == [1000, 1000, 500]
    assert LOOKUP_BATCH == 1000
    assert len(known) == 1250 and "f" * 64 not in known
    assert known["0" * 64] == "asset-000"


def test_find_known_rejects_oversized_batches() -> None:
    with pytest.raises(ValueError):
        find_known(lambda b: {}, ["a"], batch_size=1001)


def test_retry_delay_grows_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=3.0)
    assert 0.5 <= policy.delay(1) <= 1.0
    assert 1.0 <= policy.delay(2) <= 2.0
    assert 1.5 <= policy.delay(5) <= 3.0


def test_media_type_guess() -> None:
    assert guess_media_type(Path("a.JPG")) == "image/jpeg"
    assert guess_media_type(Path("clip.mp4")) == "video/mp4"
    assert guess_media_type(Path("noext")) == "application/octet-stream"
