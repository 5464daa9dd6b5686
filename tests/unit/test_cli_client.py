"""HTTP client details: error decoding, auth header, URL quoting, pagination, transport errors."""

from __future__ import annotations

import io
import json
import socket

import httpx
import pytest

from conveyor_cli.client import (
    ApiError,
    AuditClient,
    IngestClient,
    ServiceUnreachable,
    collect_pages,
    error_from_response,
)
from conveyor_cli.schemas import Page


def _mock(handler: httpx.MockTransport) -> IngestClient:
    return IngestClient("http://ingest.test/", "secret-key", transport=handler)


def test_error_envelope_is_decoded() -> None:
    body = {"error": {"code": "file_too_large", "message": "max 8 MiB", "details": {"f": "a"}}}
    err = error_from_response("ingest", httpx.Response(413, json=body))
    assert (err.status, err.code, err.message, err.details) == (
        413,
        "file_too_large",
        "max 8 MiB",
        {"f": "a"},
    )
    assert str(err) == "file_too_large: max 8 MiB"
    assert not err.transient


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (
            httpx.Response(502, html="<html><body><h1>Bad Gateway</h1></body></html>"),
            "http_502: Bad Gateway",
        ),
        (httpx.Response(503, text="  upstream\n  down "), "http_503: upstream down"),
        (httpx.Response(422, json={"detail": "slug: too short"}), "http_422: slug: too short"),
        (httpx.Response(500, content=b""), "http_500: Internal Server Error"),
    ],
)
def test_non_contract_error_bodies_still_give_one_readable_line(
    response: httpx.Response, expected: str
) -> None:
    err = error_from_response("ingest", response)
    assert str(err) == expected
    assert "\n" not in str(err)


def test_transient_statuses() -> None:
    def status(n: int) -> bool:
        return ApiError(service="s", status=n, code="c", message="m").transient

    assert [n for n in (400, 401, 404, 413, 429, 500, 502, 503, 504) if status(n)] == [
        502,
        503,
        504,
    ]


def test_requests_carry_the_key_and_quote_path_segments() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "x", "slug": "a/b", "name": "n"})

    with _mock(httpx.MockTransport(handler)) as client:
        client.get_dataset("a/b?c")
        client.get_asset("../../v1/api-keys")

    assert [r.headers["X-API-Key"] for r in seen] == ["secret-key", "secret-key"]
    assert seen[0].url.raw_path == b"/v1/datasets/a%2Fb%3Fc"
    assert seen[1].url.raw_path == b"/v1/assets/..%2F..%2Fv1%2Fapi-keys"


def test_unset_filters_are_not_sent_and_lookup_body_is_the_hash_list() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/lookup"):
            return httpx.Response(200, json={"known": {"aa": "asset-1"}})
        return httpx.Response(200, json={"items": [], "next_cursor": None})

    with _mock(httpx.MockTransport(handler)) as client:
        client.list_assets("cars", limit=5, tag="night")
        known = client.lookup_assets("cars", ["aa", "bb"])

    assert dict(seen[0].url.params) == {"limit": "5", "tag": "night"}
    assert json.loads(seen[1].content) == {"sha256": ["aa", "bb"]}
    assert known == {"aa": "asset-1"}


def test_error_answer_raises_api_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            404, json={"error": {"code": "dataset_not_found", "message": "no dataset 'x'"}}
        )

    with _mock(httpx.MockTransport(handler)) as client, pytest.raises(ApiError) as info:
        client.get_dataset("x")
    assert (info.value.status, info.value.code) == (404, "dataset_not_found")


def test_delete_with_204_returns_none() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "DELETE"
        return httpx.Response(204)

    with _mock(httpx.MockTransport(handler)) as client:
        client.revoke_api_key("k1")  # must not try to parse an empty body as JSON


def test_connection_refused_becomes_service_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing listens on the port now.
    url = f"http://127.0.0.1:{port}"
    with IngestClient(url, "k") as client, pytest.raises(ServiceUnreachable) as info:
        client.list_datasets()
    assert info.value.connect
    assert str(info.value).startswith(f"cannot reach ingest at {url} (ConnectError")


def test_collect_pages_follows_cursors_up_to_limit() -> None:
    pages: dict[str | None, Page[int]] = {
        None: {"items": [1, 2], "next_cursor": "c1"},
        "c1": {"items": [3, 4], "next_cursor": "c2"},
        "c2": {"items": [5], "next_cursor": None},
    }
    calls: list[tuple[int, str | None]] = []

    def fetch(n: int, cursor: str | None) -> Page[int]:
        calls.append((n, cursor))
        page = pages[cursor]
        return {"items": page["items"][:n], "next_cursor": page["next_cursor"]}

    everything = collect_pages(fetch, limit=100, page_size=10)
    assert everything == {"items": [1, 2, 3, 4, 5], "next_cursor": None}

    calls.clear()
    some = collect_pages(fetch, limit=3, page_size=10)
    assert some["items"] == [1, 2, 3]
    assert some["next_cursor"] == "c2"
    assert calls == [(3, None), (1, "c1")]


def test_collect_pages_stops_on_an_empty_page_with_a_cursor() -> None:
    calls = 0

    def fetch(n: int, cursor: str | None) -> Page[int]:
        nonlocal calls
        calls += 1
        return {"items": [], "next_cursor": "same"}

    assert collect_pages(fetch, limit=10, page_size=5)["items"] == []
    assert calls == 1


def test_export_streams_bytes_and_counts_lines() -> None:
    lines = [json.dumps({"seq": i}).encode() + b"\n" for i in range(5)]
    body = b"".join(lines)[:-1]  # last record without trailing newline

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["type"] == "conveyor.asset.ingested.v1"
        return httpx.Response(200, content=body, headers={"content-type": "application/x-ndjson"})

    sink = io.BytesIO()
    ticks: list[int] = []
    with AuditClient("http://audit.test", "k", transport=httpx.MockTransport(handler)) as audit:
        count = audit.export(sink, type="conveyor.asset.ingested.v1", on_records=ticks.append)

    assert count == 5 and sum(ticks) == 5
    assert sink.getvalue() == body
