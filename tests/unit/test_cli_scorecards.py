"""``conveyor scorecards`` without a server: each figure shown as "value (count)", the day
trend, and a bad time or id refused before any request."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from typer.testing import CliRunner

from conveyor_cli.client import QcClient
from conveyor_cli.main import app
from conveyor_cli.schemas import ScorecardFigures

VENDOR = str(uuid.uuid4())
NAMES = [n for n in ScorecardFigures.__annotations__ if n != "active_hours"]


def _card() -> dict[str, Any]:
    shown: dict[str, dict[str, Any]] = {n: {"value": None, "count": 0} for n in NAMES}
    shown["rework_rate"] = {"value": 1 / 41, "count": 41}
    shown["turnaround_p95_seconds"] = {"value": 30.8, "count": 12}
    return {"vendor_id": VENDOR, "figures": {**shown, "active_hours": 1}, "counters": {}}


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The requests the commands made (the client answers without a server)."""
    requests: list[dict[str, Any]] = []

    def listed(self: QcClient, **params: Any) -> dict[str, Any]:
        requests.append(params)
        return {"items": [_card()]}

    def one(self: QcClient, vendor_id: str, **params: Any) -> dict[str, Any]:
        requests.append({"vendor_id": vendor_id, **params})
        return {**_card(), "trend": [{"day": "2026-03-02", **_card()}]}

    monkeypatch.setattr(QcClient, "list_scorecards", listed)
    monkeypatch.setattr(QcClient, "vendor_scorecard", one)
    monkeypatch.setenv("CONVEYOR_API_KEY", "key")
    monkeypatch.setenv("COLUMNS", "250")
    return requests


def test_list_shows_each_figure_with_its_count(asked: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(app, ["scorecards", "list", "--since", "2026-03-01"])
    assert result.exit_code == 0, result.output
    assert VENDOR in result.output
    assert "0.0244 (41)" in result.output and "30.8 (12)" in result.output
    assert "- (0)" in result.output
    assert asked == [{"job_id": None, "since": "2026-03-01", "until": None}]


def test_show_gives_the_window_then_the_days(asked: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(app, ["scorecards", "show", VENDOR])
    assert result.exit_code == 0, result.output
    assert "By day" in result.output and "2026-03-02" in result.output
    assert result.output.count("30.8 (12)") == 2


def test_a_bad_time_or_vendor_is_a_usage_error(asked: list[dict[str, Any]]) -> None:
    assert CliRunner().invoke(app, ["scorecards", "list", "--since", "soon"]).exit_code == 2
    assert CliRunner().invoke(app, ["scorecards", "show", "acme"]).exit_code == 2
    assert asked == []
