"""``conveyor`` CLI against a real HTTP server on 127.0.0.1 implementing the contract in memory.

The fake ingest/audit server below is a small FastAPI app served by uvicorn in a thread. It
records what it received (files, bytes, tags, lookups, attempts, the files of each upload
request) so the tests can assert on the wire behaviour, and it can be scripted to fail (503s,
413s, 415s) to exercise retries and refusals. Like ingest, an upload request may carry several
files and is all-or-nothing: one refused file (named in ``details.filename``) stores nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from typer.testing import CliRunner, Result

from conveyor_cli import main as cli_main
from conveyor_cli.commands import upload as upload_command
from conveyor_cli.upload import RetryPolicy
from tests.integration.fake_api import ApiFailure, LocalServer, fake_app

KEYS = {"admin-key": "admin", "uploader-key": "uploader", "viewer-key": "viewer"}
NOW = "2026-01-01T00:00:00Z"


# =========================================================================== fake server


@dataclass
class Received:
    dataset: str
    filename: str
    sha256: str
    size: int
    content_type: str
    tags: list[str]
    content_length: str | None


@dataclass
class State:
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    assets: dict[str, dict[str, Any]] = field(default_factory=dict)
    # dataset slug -> sha256 -> asset id
    by_hash: dict[str, dict[str, str]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    # the filenames of every upload request, in order
    batches: list[list[str]] = field(default_factory=list)
    lookups: list[list[str]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    # filename -> statuses to answer on the first attempts, before succeeding
    fail_first: dict[str, list[int]] = field(default_factory=dict)
    # filename -> 413 or 415, refused on every attempt (as are *.txt files, with 415)
    refuse: dict[str, int] = field(default_factory=dict)
    upload_delay: float = 0.0
    inflight: int = 0
    max_inflight: int = 0
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)
    verify: dict[str, Any] = field(
        default_factory=lambda: {"ok": True, "records_checked": 0, "first_broken": None}
    )
    page_size_cap: int = 2  # small pages force the CLI to follow cursors

    def add_dataset(self, slug: str, name: str | None = None) -> dict[str, Any]:
        ds = {
            "id": str(uuid.uuid4()),
            "slug": slug,
            "name": name or slug,
            "created_by": "admin",
            "created_at": NOW,
        }
        self.datasets[slug] = ds
        self.by_hash.setdefault(slug, {})
        return ds

    def add_asset(self, slug: str, filename: str, data: bytes, **extra: Any) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        asset = {
            "id": str(uuid.uuid4()),
            "dataset_slug": slug,
            "filename": filename,
            "media_type": extra.pop("media_type", "image/jpeg"),
            "size_bytes": len(data),
            "sha256": digest,
            "source": extra.pop("source", "upload"),
            "uploaded_by": "uploader",
            "tags": extra.pop("tags", []),
            "created_at": NOW,
            "parent_asset_id": None,
            "frame_time_seconds": None,
            "duplicate": False,
        }
        self.assets[asset["id"]] = asset
        self.by_hash.setdefault(slug, {})[digest] = asset["id"]
        return asset


def _page(items: list[Any], request: Request, cap: int) -> dict[str, Any]:
    limit = min(int(request.query_params.get("limit", "50")), cap)
    start = int(request.query_params.get("cursor") or 0)
    chunk = items[start : start + limit]
    nxt = start + limit
    return {"items": chunk, "next_cursor": str(nxt) if nxt < len(items) else None}


def build_app(state: State) -> FastAPI:
    app = fake_app(lambda method, path: state.requests.append((method, path)))

    def role(request: Request, *allowed: str) -> str:
        key = request.headers.get("x-api-key")
        if key is None or key not in KEYS:
            raise ApiFailure(401, "unauthorized", "missing or invalid API key")
        if allowed and KEYS[key] not in allowed:
            raise ApiFailure(403, "forbidden", f"role {KEYS[key]} may not do this")
        return KEYS[key]

    def dataset(slug: str) -> dict[str, Any]:
        if slug not in state.datasets:
            raise ApiFailure(404, "dataset_not_found", f"dataset {slug!r} not found", slug=slug)
        return state.datasets[slug]

    @app.post("/v1/datasets", status_code=201)
    async def create_dataset(request: Request) -> dict[str, Any]:
        role(request, "admin", "uploader")
        body = await request.json()
        if body["slug"] in state.datasets:
            raise ApiFailure(409, "dataset_exists", f"dataset {body['slug']!r} exists")
        return state.add_dataset(body["slug"], body["name"])

    @app.get("/v1/datasets")
    async def list_datasets(request: Request) -> dict[str, Any]:
        role(request)
        return _page(list(state.datasets.values()), request, state.page_size_cap)

    @app.get("/v1/datasets/{slug}")
    async def get_dataset(slug: str, request: Request) -> dict[str, Any]:
        role(request)
        return dataset(slug)

    @app.post("/v1/datasets/{slug}/assets/lookup")
    async def lookup(slug: str, request: Request) -> dict[str, Any]:
        role(request)
        dataset(slug)
        hashes = (await request.json())["sha256"]
        if len(hashes) > 1000:
            raise ApiFailure(422, "too_many_hashes", "at most 1000 hashes")
        state.lookups.append(hashes)
        known = state.by_hash[slug]
        return {"known": {h: known[h] for h in hashes if h in known}}

    @app.post("/v1/datasets/{slug}/assets", status_code=201)
    async def upload(slug: str, request: Request) -> dict[str, Any]:
        role(request, "admin", "uploader")
        dataset(slug)
        state.inflight += 1
        state.max_inflight = max(state.max_inflight, state.inflight)
        try:
            form = await request.form()
            parts: list[Any] = list(form.getlist("files"))
            tags = [str(t) for t in form.getlist("tags")]
            names = [str(part.filename) for part in parts]
            state.batches.append(names)
            contents = [await part.read() for part in parts]
            for name in names:
                state.attempts[name] = state.attempts.get(name, 0) + 1
            await asyncio.sleep(state.upload_delay)
            for name in names:
                planned = state.fail_first.get(name)
                if planned:
                    status = planned.pop(0)
                    raise ApiFailure(status, f"http_{status}", "temporarily unavailable")
            for name in names:  # the first refused file fails the request; nothing is stored
                if name.endswith(".txt") or state.refuse.get(name) == 415:
                    raise ApiFailure(
                        415, "unsupported_media_type", "only images and videos", filename=name
                    )
                if state.refuse.get(name) == 413:
                    raise ApiFailure(413, "file_too_large", "file is too large", filename=name)
            items = []
            for name, part, data in zip(names, parts, contents, strict=True):
                digest = hashlib.sha256(data).hexdigest()
                state.received.append(
                    Received(
                        slug,
                        name,
                        digest,
                        len(data),
                        str(part.content_type),
                        tags,
                        request.headers.get("content-length"),
                    )
                )
                existing = state.by_hash[slug].get(digest)
                if existing is not None:
                    items.append({**state.assets[existing], "duplicate": True})
                    continue
                media_type = str(part.content_type)
                asset = state.add_asset(slug, name, data, media_type=media_type, tags=tags)
                items.append({**asset, "duplicate": False})
            return {"items": items}
        finally:
            state.inflight -= 1

    @app.get("/v1/datasets/{slug}/assets")
    async def list_assets(slug: str, request: Request) -> dict[str, Any]:
        role(request)
        dataset(slug)
        q = request.query_params
        items = [
            a
            for a in state.assets.values()
            if a["dataset_slug"] == slug
            and ("media_type" not in q or a["media_type"] == q["media_type"])
            and ("source" not in q or a["source"] == q["source"])
            and ("tag" not in q or q["tag"] in a["tags"])
        ]
        return _page(items, request, state.page_size_cap)

    @app.get("/v1/assets/{asset_id}")
    async def get_asset(asset_id: str, request: Request) -> dict[str, Any]:
        role(request)
        if asset_id not in state.assets:
            raise ApiFailure(404, "asset_not_found", f"asset {asset_id!r} not found")
        return {
            **state.assets[asset_id],
            "download_url": f"http://s3.local/{asset_id}?sig=abc",
            "download_url_expires_at": NOW,
        }

    @app.post("/v1/api-keys", status_code=201)
    async def create_key(request: Request) -> dict[str, Any]:
        role(request, "admin")
        body = await request.json()
        key = {
            "id": str(uuid.uuid4()),
            "name": body["name"],
            "role": body["role"],
            "created_at": NOW,
            "revoked_at": None,
            "datasets": None,
        }
        state.keys[key["id"]] = key
        return {**key, "key": f"cvk_{uuid.uuid4().hex}"}

    @app.get("/v1/api-keys")
    async def list_keys(request: Request) -> dict[str, Any]:
        role(request, "admin")
        return {"items": list(state.keys.values())}

    @app.delete("/v1/api-keys/{key_id}", status_code=204)
    async def revoke_key(key_id: str, request: Request) -> Response:
        role(request, "admin")
        if key_id not in state.keys:
            raise ApiFailure(404, "api_key_not_found", "no such key")
        state.keys[key_id]["revoked_at"] = NOW
        return Response(status_code=204)

    # ---- audit
    @app.get("/v1/audit/assets/{asset_id}/timeline")
    async def timeline(asset_id: str, request: Request) -> dict[str, Any]:
        role(request)
        return {
            "asset_id": asset_id,
            "items": [r for r in state.records if r["subject"] == asset_id],
        }

    @app.get("/v1/audit/records")
    async def records(request: Request) -> dict[str, Any]:
        role(request)
        q = request.query_params
        items = [r for r in state.records if "actor" not in q or r["actor"] == q["actor"]]
        return _page(items, request, state.page_size_cap)

    @app.post("/v1/audit/verify")
    async def verify(request: Request) -> dict[str, Any]:
        role(request)
        return state.verify

    @app.get("/v1/audit/export")
    async def export(request: Request) -> StreamingResponse:
        role(request)
        wanted = request.query_params.get("type")

        async def lines() -> Any:
            for r in state.records:
                if wanted is None or r["type"] == wanted:
                    yield json.dumps(r) + "\n"
                    await asyncio.sleep(0)

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    return app


@pytest.fixture(scope="module")
def server_state() -> Iterator[tuple[LocalServer, State]]:
    shared = State()
    with LocalServer(build_app(shared)) as server:
        yield server, shared


@pytest.fixture
def state(server_state: tuple[LocalServer, State]) -> State:
    """The server's state, emptied for this test (the server itself is shared)."""
    shared = server_state[1]
    shared.__dict__.update(vars(State()))
    return shared


@pytest.fixture
def url(server_state: tuple[LocalServer, State]) -> str:
    return server_state[0].url


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CONVEYOR_API_KEY", "CONVEYOR_INGEST_URL", "CONVEYOR_AUDIT_URL"):
        monkeypatch.delenv(name, raising=False)
    # Retries keep their count and order but not their real-world backoff.
    monkeypatch.setattr(
        upload_command, "UPLOAD_RETRY", RetryPolicy(base_delay=0.01, max_delay=0.02)
    )


def run(
    url: str, *args: str, key: str | None = "uploader-key", env: dict[str, str] | None = None
) -> Result:
    base = ["--ingest-url", url, "--audit-url", url]
    if key is not None:
        base += ["--api-key", key]
    return CliRunner().invoke(cli_main.app, [*base, *args], env={"COLUMNS": "200", **(env or {})})


def summary(result: Result) -> dict[str, Any]:
    assert result.stdout.lstrip().startswith("{"), result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _tree(root: Path) -> dict[str, bytes]:
    """A small dataset folder: nested images, a video, hidden stuff and identical content."""
    files = {
        "cars/red.jpg": b"\xff\xd8red" * 1000,
        "cars/blue.png": b"\x89PNGblue" * 700,
        "cars/night/clip.mp4": b"\x00\x00\x00\x18ftypmp42" * 5000,
        "cars/night/old.jpg": b"already on the server",
        "cars/copy/red-again.jpg": b"\xff\xd8red" * 1000,  # same bytes as red.jpg
        "cars/.thumbs/red.jpg": b"hidden folder",
        "cars/.DS_Store": b"hidden file",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


# =========================================================================== upload


def test_upload_folder_end_to_end(tmp_path: Path, url: str, state: State) -> None:
    files = _tree(tmp_path)
    state.add_dataset("cars")
    old = state.add_asset("cars", "old.jpg", files["cars/night/old.jpg"])
    state.upload_delay = 0.05  # long enough for uploads to overlap

    result = run(
        url,
        "--json",
        "upload",
        str(tmp_path / "cars"),
        "--dataset",
        "cars",
        "--tag",
        "batch-7",
        "--tag",
        "night",
        "--concurrency",
        "3",
        "--files-per-request",  # one file per request: the behaviour from before grouping
        "1",
    )

    assert result.exit_code == 0, result.output
    got = summary(result)
    assert got["counts"] == {
        "discovered": 5,
        "uploaded": 3,
        "duplicates": 1,
        "already_uploaded": 1,
        "skipped": 2,
        "failed": 0,
        "retries": 0,
    }
    # The file the dataset already had was never sent; everything else was, byte-exact.
    sent = {r.filename: r for r in state.received}
    assert set(sent) == {"red.jpg", "blue.png", "clip.mp4", "red-again.jpg"}
    for rel in ("cars/red.jpg", "cars/blue.png", "cars/night/clip.mp4", "cars/copy/red-again.jpg"):
        r = sent[Path(rel).name]
        assert r.sha256 == hashlib.sha256(files[rel]).hexdigest()
        assert r.size == len(files[rel])
        assert r.tags == ["batch-7", "night"]
        assert r.content_length is not None  # streamed with a known length, not chunked
    assert sent["clip.mp4"].content_type == "video/mp4"
    assert sent["blue.png"].content_type == "image/png"
    # One lookup with every distinct hash (red.jpg and red-again.jpg share one).
    assert len(state.lookups) == 1
    assert len(state.lookups[0]) == 4
    assert got["already_uploaded"] == [
        {
            "path": str(tmp_path / "cars/night/old.jpg"),
            "sha256": old["sha256"],
            "size_bytes": len(files["cars/night/old.jpg"]),
            "asset_id": old["id"],
        }
    ]
    # Identical content: the server stored one and reported the other as a duplicate.
    dup_names = {Path(d["path"]).name for d in got["duplicates"]}
    assert len(dup_names) == 1 and dup_names <= {"red.jpg", "red-again.jpg"}
    assert {Path(s["path"]).name: s["reason"] for s in got["skipped"]} == {
        ".DS_Store": "hidden",
        ".thumbs": "hidden",
    }
    assert 2 <= state.max_inflight <= 3
    # Exactly: check the dataset, one lookup, then one POST per file sent.
    assert sorted(state.requests) == sorted(
        [("GET", "/v1/datasets/cars"), ("POST", "/v1/datasets/cars/assets/lookup")]
        + [("POST", "/v1/datasets/cars/assets")] * 4
    )


def test_small_files_share_requests(tmp_path: Path, url: str, state: State) -> None:
    files = _tree(tmp_path)
    state.add_dataset("cars")

    result = run(
        url,
        "--json",
        "upload",
        str(tmp_path / "cars"),
        "--dataset",
        "cars",
        "--tag",
        "t",
        "--concurrency",
        "1",
    )

    assert result.exit_code == 0, result.output
    got = summary(result)
    assert got["counts"] == {
        "discovered": 5,
        "uploaded": 4,
        "duplicates": 1,
        "already_uploaded": 0,
        "skipped": 2,
        "failed": 0,
        "retries": 0,
    }
    # One request with all five files, in discovery order, each byte-exact.
    assert state.batches == [["blue.png", "red-again.jpg", "clip.mp4", "old.jpg", "red.jpg"]]
    for rel, data in files.items():
        if "/." not in rel:
            got_file = next(r for r in state.received if r.filename == Path(rel).name)
            assert got_file.sha256 == hashlib.sha256(data).hexdigest()
            assert got_file.tags == ["t"] and got_file.content_length is not None
    # The later copy of the same bytes within the request is the duplicate.
    assert [Path(d["path"]).name for d in got["duplicates"]] == ["red.jpg"]


def test_files_per_request_caps_each_request(tmp_path: Path, url: str, state: State) -> None:
    for i in range(20):
        (tmp_path / f"{i:02d}.jpg").write_bytes(f"frame {i}".encode())
    state.add_dataset("cars")
    state.upload_delay = 0.05  # long enough for requests to overlap

    result = run(
        url,
        "--json",
        "upload",
        str(tmp_path),
        "--dataset",
        "cars",
        "--concurrency",
        "2",
        "--files-per-request",
        "8",
    )

    assert result.exit_code == 0, result.output
    assert summary(result)["counts"]["uploaded"] == 20
    assert sorted(len(b) for b in state.batches) == [4, 8, 8]
    assert sorted(n for b in state.batches for n in b) == [f"{i:02d}.jpg" for i in range(20)]
    assert state.max_inflight == 2


def test_a_refused_file_fails_alone_and_the_rest_of_its_request_is_stored(
    tmp_path: Path, url: str, state: State
) -> None:
    for name in ("a.jpg", "b.txt", "c.jpg", "d.jpg", "e.jpg"):
        (tmp_path / name).write_bytes(name.encode() * 10)
    state.add_dataset("cars")
    state.refuse = {"d.jpg": 413}

    result = run(url, "--json", "upload", str(tmp_path), "--dataset", "cars", "--concurrency", "1")

    assert result.exit_code == 1, result.output
    got = summary(result)
    # Each refusal names its file: the request is sent again without it.
    assert state.batches == [
        ["a.jpg", "b.txt", "c.jpg", "d.jpg", "e.jpg"],
        ["a.jpg", "c.jpg", "d.jpg", "e.jpg"],
        ["a.jpg", "c.jpg", "e.jpg"],
    ]
    assert sorted(r.filename for r in state.received) == ["a.jpg", "c.jpg", "e.jpg"]
    assert got["counts"]["uploaded"] == 3 and got["counts"]["retries"] == 0
    assert {Path(f["path"]).name: f["error"] for f in got["failed"]} == {
        "b.txt": "unsupported_media_type: only images and videos",
        "d.jpg": "file_too_large: file is too large",
    }
    assert got["aborted"] is None


def test_a_transient_failure_retries_the_whole_request(
    tmp_path: Path, url: str, state: State
) -> None:
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (tmp_path / name).write_bytes(name.encode())
    state.add_dataset("cars")
    state.fail_first = {"b.jpg": [503]}

    result = run(url, "--json", "upload", str(tmp_path), "--dataset", "cars", "--concurrency", "1")

    assert result.exit_code == 0, result.output
    assert state.batches == [["a.jpg", "b.jpg", "c.jpg"]] * 2
    assert summary(result)["counts"]["retries"] == 1
    assert sorted(r.filename for r in state.received) == ["a.jpg", "b.jpg", "c.jpg"]


def test_second_run_uploads_nothing_and_table_summary(
    tmp_path: Path, url: str, state: State
) -> None:
    _tree(tmp_path)
    state.add_dataset("cars")
    first = run(url, "upload", str(tmp_path), "--dataset", "cars")
    assert first.exit_code == 0, first.output
    sent_first = len(state.received)

    second = run(url, "upload", str(tmp_path), "--dataset", "cars")

    assert second.exit_code == 0, second.output
    assert len(state.received) == sent_first  # nothing re-sent
    out = second.stdout
    assert "Upload to dataset cars" in out
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in out.splitlines()
        if line.count("│") >= 3
    }
    assert rows["uploaded"] == "0"
    assert rows["already uploaded (skipped)"] == "5"
    assert rows["failed"] == "0"
    # Progress and notes go to stderr, never into the summary on stdout.
    assert "already in dataset" in second.stderr
    assert "hashing" not in out


def test_transient_failures_are_retried_and_4xx_are_not(
    tmp_path: Path, url: str, state: State
) -> None:
    for name in ("flaky.jpg", "down.jpg", "notes.txt", "fine.jpg"):
        (tmp_path / name).write_bytes(name.encode() * 10)
    state.add_dataset("cars")
    state.fail_first = {"flaky.jpg": [503, 502], "down.jpg": [503, 504, 503, 503]}

    result = run(url, "--json", "upload", str(tmp_path), "--dataset", "cars")

    assert result.exit_code == 1, result.output
    got = summary(result)
    assert state.attempts == {"flaky.jpg": 3, "down.jpg": 3, "notes.txt": 1, "fine.jpg": 1}
    assert {r.filename for r in state.received} == {"flaky.jpg", "fine.jpg"}
    assert got["counts"]["uploaded"] == 2
    assert got["counts"]["failed"] == 2
    failed = {Path(f["path"]).name: f["error"] for f in got["failed"]}
    assert failed == {
        "down.jpg": "http_503: temporarily unavailable (after 3 attempts)",
        "notes.txt": "unsupported_media_type: only images and videos",
    }


def test_failed_files_are_listed_in_the_table_summary(
    tmp_path: Path, url: str, state: State
) -> None:
    (tmp_path / "ok.jpg").write_bytes(b"ok")
    (tmp_path / "readme.txt").write_bytes(b"text")
    state.add_dataset("cars")

    result = run(url, "upload", str(tmp_path), "--dataset", "cars")

    assert result.exit_code == 1
    assert "Failed" in result.stdout
    line = next(li for li in result.stdout.splitlines() if "readme.txt" in li)
    assert "unsupported_media_type: only images and videos" in line
    assert "Traceback" not in result.output


def test_lookup_is_batched_by_1000(tmp_path: Path, url: str, state: State) -> None:
    state.add_dataset("big")
    for i in range(1001):
        data = f"frame-{i}".encode()
        (tmp_path / f"f{i:04d}.jpg").write_bytes(data)
        if i != 500:  # the service already has all but one
            state.add_asset("big", f"f{i:04d}.jpg", data)

    result = run(url, "--json", "upload", str(tmp_path), "--dataset", "big")

    assert result.exit_code == 0, result.output
    assert [len(b) for b in state.lookups] == [1000, 1]
    assert [r.filename for r in state.received] == ["f0500.jpg"]
    assert summary(result)["counts"]["already_uploaded"] == 1000


def test_unknown_dataset_is_a_usage_error(tmp_path: Path, url: str, state: State) -> None:
    (tmp_path / "a.jpg").write_bytes(b"a")

    result = run(url, "upload", str(tmp_path), "--dataset", "nope")

    assert result.exit_code == 2
    assert "dataset 'nope' does not exist" in result.stderr
    assert "--create-dataset" in result.stderr
    assert state.received == [] and state.lookups == []


def test_create_dataset_flag_creates_then_uploads(tmp_path: Path, url: str, state: State) -> None:
    (tmp_path / "a.jpg").write_bytes(b"a")

    result = run(url, "--json", "upload", str(tmp_path), "--dataset", "fresh", "--create-dataset")

    assert result.exit_code == 0, result.output
    assert state.datasets["fresh"]["name"] == "fresh"
    assert [(r.dataset, r.filename) for r in state.received] == [("fresh", "a.jpg")]


def test_missing_path_is_a_usage_error(tmp_path: Path, url: str, state: State) -> None:
    state.add_dataset("cars")
    result = run(url, "upload", str(tmp_path / "missing"), "--dataset", "cars")
    assert result.exit_code == 2
    assert "path does not exist" in result.stderr
    assert state.requests == []


def test_viewer_key_upload_is_forbidden_and_stops_early(
    tmp_path: Path, url: str, state: State
) -> None:
    for i in range(6):
        (tmp_path / f"{i}.jpg").write_bytes(bytes([i]))
    state.add_dataset("cars")

    result = run(
        url,
        "--json",
        "upload",
        str(tmp_path),
        "--dataset",
        "cars",
        "--concurrency",
        "1",
        key="viewer-key",
    )

    assert result.exit_code == 1
    got = summary(result)
    assert got["counts"]["failed"] == 6
    upload_posts = [r for r in state.requests if r == ("POST", "/v1/datasets/cars/assets")]
    assert len(upload_posts) == 1  # the rest were not attempted
    assert got["aborted"] == "forbidden: role viewer may not do this"


def test_empty_folder_uploads_nothing(tmp_path: Path, url: str, state: State) -> None:
    state.add_dataset("cars")
    (tmp_path / ".hidden").write_bytes(b"x")
    result = run(url, "--json", "upload", str(tmp_path), "--dataset", "cars")
    assert result.exit_code == 0, result.output
    assert summary(result)["counts"]["skipped"] == 1
    assert state.received == []


# =========================================================================== auth & transport


def test_missing_api_key_is_a_usage_error(tmp_path: Path, url: str, state: State) -> None:
    result = run(url, "datasets", "list", key=None)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: missing API key: pass --api-key KEY or set the CONVEYOR_API_KEY environment"
        " variable"
    )
    assert state.requests == []


def test_api_key_and_urls_from_environment(url: str, state: State) -> None:
    state.add_dataset("cars")
    result = CliRunner().invoke(
        cli_main.app,
        ["--json", "datasets", "get", "cars"],
        env={"CONVEYOR_API_KEY": "viewer-key", "CONVEYOR_INGEST_URL": url},
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["slug"] == "cars"


def test_invalid_key_prints_one_error_line(url: str, state: State) -> None:
    result = run(url, "datasets", "list", key="wrong")
    assert result.exit_code == 1
    assert result.stderr == "error: unauthorized: missing or invalid API key\n"


def test_connection_refused_is_reported_cleanly(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    (tmp_path / "a.jpg").write_bytes(b"a")

    for args in (["datasets", "list"], ["upload", str(tmp_path), "--dataset", "cars"]):
        result = run(dead, *args)
        assert result.exit_code == 1
        last = result.stderr.splitlines()[-1]
        assert last.startswith(f"error: cannot reach ingest at {dead} (ConnectError")
        assert "Traceback" not in result.output


# =========================================================================== other commands


def test_datasets_commands(url: str, state: State) -> None:
    created = run(url, "--json", "datasets", "create", "cars", "--name", "Cars")
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["name"] == "Cars"

    again = run(url, "datasets", "create", "cars", "--name", "Cars")
    assert again.exit_code == 1
    assert again.stderr == "error: dataset_exists: dataset 'cars' exists\n"

    for slug in ("b", "c", "d", "e"):
        state.add_dataset(slug)
    listed = run(url, "--json", "datasets", "list", "--limit", "4")
    # The server caps pages at 2, so four items means the cursor was followed.
    assert [d["slug"] for d in json.loads(listed.stdout)["items"]] == ["cars", "b", "c", "d"]

    table = run(url, "datasets", "list")
    assert table.exit_code == 0
    assert all(slug in table.stdout for slug in ("cars", "b", "e"))

    missing = run(url, "datasets", "get", "zzz")
    assert missing.exit_code == 1
    assert missing.stderr == "error: dataset_not_found: dataset 'zzz' not found\n"


def test_assets_commands(url: str, state: State) -> None:
    state.add_dataset("cars")
    ids = [
        state.add_asset("cars", f"{i}.jpg", bytes([i]), tags=["night"] if i % 2 else [])["id"]
        for i in range(7)
    ]
    state.add_asset("cars", "v.mp4", b"video", media_type="video/mp4")

    night = run(url, "--json", "assets", "list", "--dataset", "cars", "--tag", "night")
    assert night.exit_code == 0, night.output
    assert [a["filename"] for a in json.loads(night.stdout)["items"]] == ["1.jpg", "3.jpg", "5.jpg"]

    limited = run(url, "--json", "assets", "list", "--dataset", "cars", "--limit", "5")
    page = json.loads(limited.stdout)
    assert len(page["items"]) == 5 and page["next_cursor"] is not None

    videos = run(url, "assets", "list", "--dataset", "cars", "--media-type", "video/mp4")
    assert "v.mp4" in videos.stdout and "1.jpg" not in videos.stdout

    one = run(url, "assets", "get", ids[3])
    assert one.exit_code == 0
    assert f"http://s3.local/{ids[3]}?sig=abc" in one.stdout

    unknown = run(url, "assets", "list", "--dataset", "nope")
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("error: dataset_not_found:")


def _record(seq: int, subject: str, type_: str, actor: str = "alice") -> dict[str, Any]:
    return {
        "seq": seq,
        "event_id": f"ev-{seq}",
        "type": type_,
        "subject": subject,
        "actor": actor,
        "service": "ingest",
        "time": NOW,
        "trace_id": None,
        "topic": "conveyor.ingest.events",
        "payload": {"n": seq},
        "prev_hash": f"h{seq - 1}",
        "hash": f"h{seq}",
        "recorded_at": NOW,
    }


def test_audit_commands(tmp_path: Path, url: str, state: State) -> None:
    state.records = [
        _record(1, "asset-1", "conveyor.asset.ingested.v1"),
        _record(2, "asset-2", "conveyor.asset.ingested.v1", actor="bob"),
        _record(3, "asset-1", "conveyor.asset.cleaned.v1"),
    ]

    history = run(url, "audit", "history", "asset-1")
    assert history.exit_code == 0, history.output
    assert "conveyor.asset.ingested.v1" in history.stdout
    assert "conveyor.asset.cleaned.v1" in history.stdout
    assert "ev-2" not in history.stdout

    recs = run(url, "--json", "audit", "records", "--actor", "alice")
    assert [r["seq"] for r in json.loads(recs.stdout)["items"]] == [1, 3]

    bad_time = run(url, "audit", "records", "--since", "yesterday")
    assert bad_time.exit_code == 2
    assert "--since must be an ISO 8601 time" in bad_time.stderr

    state.verify = {"ok": True, "records_checked": 3, "first_broken": None}
    ok = run(url, "audit", "verify")
    assert ok.exit_code == 0
    assert ok.stdout.strip() == "audit log OK: 3 records checked"

    state.verify = {
        "ok": False,
        "records_checked": 2,
        "first_broken": {"seq": 2, "event_id": "ev-2", "reason": "hash mismatch"},
    }
    broken = run(url, "audit", "verify")
    assert broken.exit_code == 1
    assert "BROKEN" in broken.stdout and "hash mismatch" in broken.stdout

    target = tmp_path / "out.ndjson"
    exported = run(
        url, "audit", "export", "--type", "conveyor.asset.ingested.v1", "-o", str(target)
    )
    assert exported.exit_code == 0, exported.output
    lines = target.read_text().splitlines()
    assert [json.loads(li)["seq"] for li in lines] == [1, 2]
    assert exported.stdout.strip() == f"exported 2 records to {target}"
    assert not (tmp_path / "out.ndjson.part").exists()


def test_audit_export_failure_leaves_no_file(tmp_path: Path, url: str, state: State) -> None:
    target = tmp_path / "out.ndjson"
    result = run(url, "audit", "export", "-o", str(target), key="wrong")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: unauthorized")
    assert list(tmp_path.iterdir()) == []


def test_keys_commands(url: str, state: State) -> None:
    created = run(url, "--json", "keys", "create", "ci", "--role", "uploader", key="admin-key")
    assert created.exit_code == 0, created.output
    key = json.loads(created.stdout)
    assert key["role"] == "uploader" and key["key"].startswith("cvk_")

    bad_role = run(url, "keys", "create", "ci", "--role", "root", key="admin-key")
    assert bad_role.exit_code == 2

    listed = run(url, "keys", "list", key="admin-key")
    assert key["id"] in listed.stdout and key["key"] not in listed.stdout

    revoked = run(url, "keys", "revoke", key["id"], key="admin-key")
    assert revoked.exit_code == 0
    assert state.keys[key["id"]]["revoked_at"] == NOW

    forbidden = run(url, "keys", "list", key="uploader-key")
    assert forbidden.exit_code == 1
    assert forbidden.stderr.startswith("error: forbidden:")
