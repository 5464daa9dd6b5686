"""The concurrent upload engine, request grouping and lookup batching, driven by fakes."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import httpx
import pytest

from conveyor_cli.client import ApiError, AsyncIngestClient, ServiceUnreachable, UploadPart
from conveyor_cli.schemas import Asset
from conveyor_cli.upload import (
    LOOKUP_BATCH,
    HashedFile,
    RetryPolicy,
    find_known,
    group_files,
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
        "parent_asset_id": None,
        "frame_time_seconds": None,
        "duplicate": duplicate,
    }


def _err(status: int, code: str = "x") -> ApiError:
    return ApiError(service="ingest", status=status, code=code, message=f"status {status}")


def _refusal(filename: str, status: int = 415) -> ApiError:
    """The service's answer when one file of a request is refused (nothing is stored)."""
    return ApiError(
        service="ingest",
        status=status,
        code="unsupported_media_type" if status == 415 else "file_too_large",
        message=f"{filename}: refused; nothing from this request was stored",
        details={"filename": filename},
    )


def _read_all(stream: IO[bytes]) -> bytes:
    # Read like httpx does: seek(0) then fixed-size chunks.
    stream.seek(0)
    return b"".join(iter(lambda: stream.read(64 * 1024), b""))


class FakeUploader:
    """Scripted answers per filename; records requests, attempts, bodies and concurrency.

    Like the service, the files of a request are checked in order and the first scripted
    error fails the whole request; nothing of a failed request is kept.
    """

    def __init__(self, script: dict[str, list[Exception | str]] | None = None) -> None:
        self.script = script or {}
        self.attempts: dict[str, int] = {}
        self.bodies: dict[str, bytes] = {}
        self.calls: list[tuple[str, str, str, list[str]]] = []
        self.requests: list[list[str]] = []
        self.inflight = 0
        self.max_inflight = 0

    async def upload_assets(
        self, slug: str, *, parts: Sequence[UploadPart], tags: list[str]
    ) -> list[Asset]:
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            self.requests.append([p.filename for p in parts])
            bodies = {}
            for p in parts:
                self.attempts[p.filename] = self.attempts.get(p.filename, 0) + 1
                self.calls.append((slug, p.filename, p.media_type, tags))
                bodies[p.filename] = _read_all(p.stream)
            await asyncio.sleep(0.005)
            answers = []
            for p in parts:
                steps = self.script.get(p.filename, [])
                step = steps.pop(0) if steps else "ok"
                if isinstance(step, Exception):
                    raise step
                answers.append(_asset(p.filename, duplicate=step == "dup"))
            self.bodies.update(bodies)
            return answers
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
        fake,
        "cars",
        files,
        concurrency=2,
        files_per_request=1,
        retry=FAST,
        on_bytes=progressed.append,
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

    result = await upload_files(fake, "cars", files, concurrency=1, files_per_request=1, retry=FAST)

    assert fake.attempts == {"f000.jpg": 1, "f001.jpg": 1}
    assert [(f.path.name, f.error) for f in result.failed] == [
        ("f000.jpg", f"nope: status {status}")
    ]
    assert len(result.uploaded) == 1


async def test_auth_failure_stops_the_run(tmp_path: Path) -> None:
    files = _files(tmp_path, 10)
    fake = FakeUploader({"f000.jpg": [_err(403, "forbidden")]})

    result = await upload_files(fake, "cars", files, concurrency=1, files_per_request=1, retry=FAST)

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


# --------------------------------------------------------------------------- grouping


def _sized(*sizes: int) -> list[HashedFile]:
    return [HashedFile(Path(f"g{i}.jpg"), size, f"{i:064x}") for i, size in enumerate(sizes)]


def _names(groups: list[list[HashedFile]]) -> list[list[str]]:
    return [[f.path.name for f in group] for group in groups]


def test_group_files_caps_the_number_of_files_and_keeps_order() -> None:
    files = _sized(*[10] * 7)

    groups = group_files(files, max_files=3, max_bytes=1000)

    assert _names(groups) == [
        ["g0.jpg", "g1.jpg", "g2.jpg"],
        ["g3.jpg", "g4.jpg", "g5.jpg"],
        ["g6.jpg"],
    ]
    assert [f for group in groups for f in group] == files


def test_group_files_caps_the_bytes_per_request() -> None:
    groups = group_files(_sized(40, 40, 20, 30, 70, 1), max_files=8, max_bytes=100)

    # 40+40+20 fills the budget exactly; 30+70 too; the last file starts a new request.
    assert [[f.size for f in group] for group in groups] == [[40, 40, 20], [30, 70], [1]]


def test_group_files_sends_a_file_bigger_than_the_budget_alone() -> None:
    groups = group_files(_sized(10, 500, 10, 10, 101), max_files=8, max_bytes=100)

    assert [[f.size for f in group] for group in groups] == [[10], [500], [10, 10], [101]]


def test_group_files_with_one_file_per_request_is_one_group_per_file() -> None:
    files = _sized(1, 2, 3)
    assert group_files(files, max_files=1, max_bytes=100) == [[f] for f in files]
    assert group_files([], max_files=8, max_bytes=100) == []


@pytest.mark.parametrize(("max_files", "max_bytes"), [(0, 100), (8, 0)])
def test_group_files_rejects_empty_limits(max_files: int, max_bytes: int) -> None:
    with pytest.raises(ValueError):
        group_files(_sized(1), max_files=max_files, max_bytes=max_bytes)


# --------------------------------------------------------------------------- grouped engine


async def test_small_files_share_requests_up_to_the_count_and_byte_limits(
    tmp_path: Path,
) -> None:
    files = _files(tmp_path, 20, size=100)
    fake = FakeUploader({"f004.jpg": ["dup"]})
    progressed: list[int] = []
    done: list[HashedFile] = []

    result = await upload_files(
        fake,
        "cars",
        files,
        tags=["a"],
        concurrency=1,
        files_per_request=8,
        request_bytes=650,  # room for six 100-byte files
        retry=FAST,
        on_bytes=progressed.append,
        on_done=done.append,
    )

    assert [len(r) for r in fake.requests] == [6, 6, 6, 2]
    assert [n for r in fake.requests for n in r] == [f.path.name for f in files]
    assert len(result.uploaded) == 19 and result.failed == []
    assert [d.file.path.name for d in result.duplicates] == ["f004.jpg"]
    # Each file's own bytes in its own part, progress once per byte and once per file.
    assert all(fake.bodies[f.path.name] == f.path.read_bytes() for f in files)
    assert sum(progressed) == sum(f.size for f in files)
    assert done == files
    assert {(c[0], tuple(c[3])) for c in fake.calls} == {("cars", ("a",))}


async def test_a_short_run_is_spread_over_every_worker(tmp_path: Path) -> None:
    files = _files(tmp_path, 10)
    fake = FakeUploader()

    result = await upload_files(fake, "cars", files, concurrency=4, files_per_request=8)

    assert sorted(len(r) for r in fake.requests) == [1, 3, 3, 3]
    assert fake.max_inflight == 4
    assert len(result.uploaded) == 10


async def test_a_refused_file_fails_alone_and_the_rest_of_its_request_is_sent_again(
    tmp_path: Path,
) -> None:
    files = _files(tmp_path, 4)
    fake = FakeUploader({"f001.jpg": [_refusal("f001.jpg")]})
    progressed: list[int] = []
    done: list[HashedFile] = []

    result = await upload_files(
        fake,
        "cars",
        files,
        concurrency=1,
        retry=FAST,
        on_bytes=progressed.append,
        on_done=done.append,
    )

    assert fake.requests == [
        ["f000.jpg", "f001.jpg", "f002.jpg", "f003.jpg"],
        ["f000.jpg", "f002.jpg", "f003.jpg"],
    ]
    assert [(f.path.name, f.error) for f in result.failed] == [
        (
            "f001.jpg",
            "unsupported_media_type: f001.jpg: refused; nothing from this request was stored",
        )
    ]
    assert [u.file.path.name for u in result.uploaded] == ["f000.jpg", "f002.jpg", "f003.jpg"]
    assert result.retries == 0 and result.aborted is None
    assert sum(progressed) == sum(f.size for f in files)
    assert sorted(done, key=lambda f: f.path) == files


async def test_every_refused_file_of_a_request_is_found_one_answer_at_a_time(
    tmp_path: Path,
) -> None:
    files = _files(tmp_path, 5)
    fake = FakeUploader(
        {"f001.jpg": [_refusal("f001.jpg", 413)], "f003.jpg": [_refusal("f003.jpg")]}
    )

    result = await upload_files(fake, "cars", files, concurrency=1, retry=FAST)

    assert [len(r) for r in fake.requests] == [5, 4, 3]
    assert {f.path.name: f.error.split(":")[0] for f in result.failed} == {
        "f001.jpg": "file_too_large",
        "f003.jpg": "unsupported_media_type",
    }
    assert [u.file.path.name for u in result.uploaded] == ["f000.jpg", "f002.jpg", "f004.jpg"]


async def test_a_refusal_that_names_two_files_of_the_request_falls_back_to_one_per_request(
    tmp_path: Path,
) -> None:
    files = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        path = tmp_path / folder / "same.jpg"
        path.write_bytes(folder.encode())
        files.append(HashedFile(path, 1, hashlib.sha256(folder.encode()).hexdigest()))
    # The service refuses the first copy it reads, then (one file per request) accepts.
    fake = FakeUploader({"same.jpg": [_refusal("same.jpg"), _refusal("same.jpg")]})

    result = await upload_files(fake, "cars", files, concurrency=1, retry=FAST)

    assert fake.requests == [["same.jpg", "same.jpg"], ["same.jpg"], ["same.jpg"]]
    assert [f.path for f in result.failed] == [files[0].path]
    assert [u.file.path for u in result.uploaded] == [files[1].path]


async def test_a_transient_failure_retries_the_whole_request(tmp_path: Path) -> None:
    files = _files(tmp_path, 3)
    fake = FakeUploader({"f001.jpg": [_err(503), _err(502)]})
    progressed: list[int] = []

    result = await upload_files(
        fake, "cars", files, concurrency=1, retry=FAST, on_bytes=progressed.append
    )

    assert fake.requests == [["f000.jpg", "f001.jpg", "f002.jpg"]] * 3
    assert result.retries == 2
    assert len(result.uploaded) == 3 and result.failed == []
    assert sum(progressed) == sum(f.size for f in files)


async def test_a_request_that_keeps_failing_fails_every_file_of_it(tmp_path: Path) -> None:
    files = _files(tmp_path, 3)
    fake = FakeUploader({"f000.jpg": [_err(504, "gateway_timeout")] * 5})

    result = await upload_files(fake, "cars", files, concurrency=1, retry=FAST)

    assert len(fake.requests) == 3
    assert [f.error for f in result.failed] == [
        "gateway_timeout: status 504 (after 3 attempts)"
    ] * 3


async def test_an_error_naming_no_file_fails_the_whole_request(tmp_path: Path) -> None:
    files = _files(tmp_path, 3)
    fake = FakeUploader({"f001.jpg": [_err(422, "validation_error")]})

    result = await upload_files(fake, "cars", files, concurrency=1, retry=FAST)

    assert len(fake.requests) == 1
    assert [f.error for f in result.failed] == ["validation_error: status 422"] * 3
    assert result.aborted is None


async def test_auth_failure_of_a_request_stops_the_run(tmp_path: Path) -> None:
    files = _files(tmp_path, 10)
    fake = FakeUploader({"f000.jpg": [_err(403, "forbidden")]})

    result = await upload_files(fake, "cars", files, concurrency=1, files_per_request=4, retry=FAST)

    assert len(fake.requests) == 1  # the other groups were not sent
    assert result.aborted == "forbidden: status 403"
    assert [f.error for f in result.failed] == ["forbidden: status 403"] * 4 + [
        "not attempted: forbidden: status 403"
    ] * 6


async def test_an_unreadable_file_fails_alone_and_the_rest_of_its_request_is_sent(
    tmp_path: Path,
) -> None:
    files = _files(tmp_path, 3)
    files[1].path.unlink()
    fake = FakeUploader()
    progressed: list[int] = []

    result = await upload_files(
        fake, "cars", files, concurrency=1, retry=FAST, on_bytes=progressed.append
    )

    assert fake.requests == [["f000.jpg", "f002.jpg"]]
    assert [f.path for f in result.failed] == [files[1].path]
    assert result.failed[0].error.startswith("cannot read file")
    assert sum(progressed) == sum(f.size for f in files)


# --------------------------------------------------------------------------- HTTP client


def _client(handler: httpx.MockTransport) -> AsyncIngestClient:
    return AsyncIngestClient("http://ingest.test", "k", transport=handler)


async def test_client_sends_every_file_as_a_files_part_of_one_request(tmp_path: Path) -> None:
    files = _files(tmp_path, 2)
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        request.read()
        items = [_asset("f000.jpg"), _asset("f001.jpg", duplicate=True)]
        return httpx.Response(201, json={"items": items})

    async with _client(httpx.MockTransport(answer)) as client:
        with files[0].path.open("rb") as a, files[1].path.open("rb") as b:
            parts = [
                UploadPart("f000.jpg", a, "image/jpeg"),
                UploadPart("f001.jpg", b, "image/png"),
            ]
            assets = await client.upload_assets("a/b", parts=parts, tags=["t"])

    assert [a["duplicate"] for a in assets] == [False, True]
    (request,) = seen
    assert request.url.raw_path == b"/v1/datasets/a%2Fb/assets"
    body = request.content
    assert body.count(b'name="files"') == 2 and body.count(b'name="tags"') == 1
    assert b'filename="f001.jpg"' in body and b"Content-Type: image/png" in body
    assert request.headers["content-length"] == str(len(body))


async def test_client_rejects_an_answer_without_one_item_per_file(tmp_path: Path) -> None:
    files = _files(tmp_path, 2)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, content=json.dumps({"items": [_asset("f000.jpg")]}))

    async with _client(httpx.MockTransport(answer)) as client:
        with files[0].path.open("rb") as a, files[1].path.open("rb") as b:
            parts = [UploadPart("a", a, "image/jpeg"), UploadPart("b", b, "image/jpeg")]
            with pytest.raises(ApiError) as caught:
                await client.upload_assets("cars", parts=parts, tags=[])

    assert caught.value.code == "invalid_response"


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
