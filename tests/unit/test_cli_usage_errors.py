"""Usage errors are caught before any request, with exit code 2 and a one-line reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from conveyor_cli.main import app

# Nothing listens here; a usage error must be reported before any connection attempt.
DEAD = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CONVEYOR_API_KEY", "CONVEYOR_INGEST_URL", "CONVEYOR_AUDIT_URL"):
        monkeypatch.delenv(name, raising=False)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert "Traceback" not in result.output
    return result.exit_code, result.stderr


def test_url_without_scheme_is_rejected() -> None:
    code, err = invoke("--ingest-url", "localhost:8001", "--api-key", "k", "datasets", "list")
    assert code == 2
    assert "must start with http:// or https://" in err


def test_export_to_an_unwritable_place_is_a_usage_error(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "audit.ndjson"
    code, err = invoke("--audit-url", DEAD, "--api-key", "k", "audit", "export", "-o", str(target))
    assert code == 2
    assert err.strip() == f"error: cannot write {target}: No such file or directory"


def test_missing_key_is_checked_before_the_disk_or_network(tmp_path: Path) -> None:
    code, err = invoke("--ingest-url", DEAD, "upload", str(tmp_path / "nope"), "--dataset", "d")
    assert code == 2
    assert err.startswith("error: missing API key")


@pytest.mark.parametrize("option", ["--since", "--until"])
def test_bad_timestamps_are_rejected(option: str) -> None:
    code, err = invoke("--audit-url", DEAD, "--api-key", "k", "audit", "records", option, "soon")
    assert code == 2
    assert f"{option} must be an ISO 8601 time" in err


@pytest.mark.parametrize(
    "args",
    [
        ["upload", "x.jpg"],  # --dataset missing
        ["upload", "--dataset", "d"],  # no path
        ["upload", "x.jpg", "--dataset", "d", "--concurrency", "0"],
        ["keys", "create", "n", "--role", "superuser"],
        ["assets", "list"],
    ],
)
def test_bad_arguments_exit_2(args: list[str]) -> None:
    code, _ = invoke("--ingest-url", DEAD, "--api-key", "k", *args)
    assert code == 2


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("conveyor ")
