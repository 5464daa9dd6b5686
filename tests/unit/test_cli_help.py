"""Every command and option of ``conveyor`` is documented, with examples."""

from __future__ import annotations

from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from conveyor_cli.main import app

ROOT = typer.main.get_command(app)
EXPECTED = {
    "upload",
    "datasets list",
    "datasets create",
    "datasets get",
    "datasets versions",
    "datasets version-create",
    "datasets export",
    "assets list",
    "assets get",
    "quality report",
    "quality summary",
    "quality duplicates",
    "quality policy get",
    "quality policy set",
    "quality reanalyse",
    "quality reanalyses",
    "quality backfill-sources",
    "audit history",
    "audit records",
    "audit verify",
    "audit export",
    "keys create",
    "keys list",
    "keys revoke",
    "keys scope",
    "ontologies create",
    "ontologies version",
    "ontologies list",
    "ontologies show",
    "vendors create",
    "vendors list",
    "jobs create",
    "jobs list",
    "jobs status",
    "jobs label-studio",
    "jobs pause",
    "jobs resume",
    "jobs cancel",
    "tasks list",
    "deliveries list",
    "deliveries show",
    "deliveries redeliver",
    "reviews list",
    "reviews show",
    "reviews accept",
    "reviews reject",
    "reviews rework",
    "scorecards list",
    "scorecards show",
}


def _is_group(cmd: Any) -> bool:
    # Typer vendors its own click, so duck-type instead of isinstance(click.Group).
    return hasattr(cmd, "commands")


def _walk(cmd: Any, prefix: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}
    if _is_group(cmd):
        for name, sub in cmd.commands.items():
            path = f"{prefix} {name}".strip()
            found[path] = sub
            found.update(_walk(sub, path))
    return found


ALL = _walk(ROOT)
LEAVES = {k: v for k, v in ALL.items() if not _is_group(v)}


def test_the_documented_commands_exist() -> None:
    assert set(LEAVES) == EXPECTED


@pytest.mark.parametrize("path", sorted(ALL))
def test_every_command_has_help_with_an_example(path: str) -> None:
    help_text = ALL[path].help or ""
    assert "Example" in help_text, path
    assert "conveyor " in help_text, path


@pytest.mark.parametrize("path", ["", *sorted(ALL)])
def test_every_parameter_is_explained(path: str) -> None:
    cmd = ALL[path] if path else ROOT
    for param in cmd.params:
        if param.name in {"help", "install_completion", "show_completion"}:
            continue
        assert getattr(param, "help", None), f"{path or 'conveyor'}: {param.name} has no help"


@pytest.mark.parametrize("path", ["", *sorted(ALL)])
def test_help_renders_without_an_api_key(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVEYOR_API_KEY", raising=False)
    result = CliRunner().invoke(app, [*path.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_global_options_are_listed_in_main_help() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "120"})
    for option in (
        "--ingest-url",
        "--audit-url",
        "--clean-url",
        "--api-key",
        "--json",
        "CONVEYOR_API_KEY",
    ):
        assert option in result.output
