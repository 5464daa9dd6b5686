"""``conveyor datasets versions / version-create / export`` without a server: the requests
made, the export followed to its end with its progress, a failed export exits 1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from conveyor_cli.client import QcClient
from conveyor_cli.main import app

VERSION = {
    "id": "v-1",
    "dataset_id": "d-1",
    "dataset": "cars",
    "number": 3,
    "manifest_hash": "ab" * 32,
    "item_count": 20,
    "shape_count": 57,
    "left_out": 0,
    "classes": ["car"],
    "created_by": "ml",
    "created_at": "2026-03-01T10:00:00Z",
}


def _export(state: str, done: int, **extra: Any) -> dict[str, Any]:
    return {"id": "e-1", "state": state, "done": done, "total": 20, "error": None} | extra


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """The calls the commands made; the export moves queued -> running -> done as it is read."""
    calls: list[tuple[str, Any]] = []
    states: Iterator[dict[str, Any]] = iter(
        [_export("running", 5), _export("running", 15), _export("done", 20, sha256="x")]
    )

    def created(self: QcClient, dataset: str) -> dict[str, Any]:
        calls.append(("create", dataset))
        return VERSION

    def listed(self: QcClient, dataset: str, **params: Any) -> dict[str, Any]:
        calls.append(("list", dataset))
        return {"items": [VERSION], "next_cursor": None}

    def requested(self: QcClient, dataset: str, number: int, **body: Any) -> dict[str, Any]:
        calls.append(("export", (dataset, number, body)))
        return _export("queued", 0)

    def read(self: QcClient, export_id: str) -> dict[str, Any]:
        calls.append(("get", export_id))
        return next(states)

    monkeypatch.setattr(QcClient, "create_version", created)
    monkeypatch.setattr(QcClient, "list_versions", listed)
    monkeypatch.setattr(QcClient, "request_export", requested)
    monkeypatch.setattr(QcClient, "get_export", read)
    monkeypatch.setattr("conveyor_cli.commands.datasets.time.sleep", lambda seconds: None)
    monkeypatch.setenv("CONVEYOR_API_KEY", "key")
    monkeypatch.setenv("COLUMNS", "250")
    return calls


def test_version_create_and_list(asked: list[tuple[str, Any]]) -> None:
    made = CliRunner().invoke(app, ["datasets", "version-create", "cars"])
    assert made.exit_code == 0, made.output
    assert "Version 3 of cars" in made.output and "ab" * 32 in made.output
    listed = CliRunner().invoke(app, ["datasets", "versions", "cars"])
    assert listed.exit_code == 0, listed.output
    assert "Versions of cars" in listed.output and "57" in listed.output
    assert asked == [("create", "cars"), ("list", "cars")]


def test_export_is_followed_until_built_with_its_progress(asked: list[tuple[str, Any]]) -> None:
    result = CliRunner().invoke(
        app, ["datasets", "export", "cars", "3", "--format", "yolo", "--images", "links"]
    )
    assert result.exit_code == 0, result.output
    assert asked[0] == ("export", ("cars", 3, {"export_format": "yolo", "images": "links"}))
    assert [c for c, _ in asked[1:]] == ["get", "get", "get"]
    assert "running: 5/20 images" in result.output and "done: 20/20 images" in result.output


def test_no_wait_shows_the_queued_export(asked: list[tuple[str, Any]]) -> None:
    result = CliRunner().invoke(app, ["datasets", "export", "cars", "3", "--no-wait"])
    assert result.exit_code == 0, result.output
    assert "queued" in result.output and [c for c, _ in asked] == ["export"]


def test_a_failed_export_exits_1_with_its_error(
    asked: list[tuple[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        QcClient, "get_export", lambda self, i: _export("failed", 0, error="NoSuchKey: gone")
    )
    result = CliRunner().invoke(app, ["datasets", "export", "cars", "3"])
    assert result.exit_code == 1
    assert "NoSuchKey: gone" in result.output
