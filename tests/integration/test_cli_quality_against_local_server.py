"""``conveyor quality`` against a fake clean service on 127.0.0.1 implementing its contract.

The fake answers the clean routes from in-memory state (plus ingest's ``GET /v1/assets/{id}``,
which ``quality report`` asks when clean has no report), checks keys and roles like the real
services, and answers a bad policy with the real 422 shape. It records every request and
every policy body it received.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from typer.testing import CliRunner, Result

from conveyor_cli import main as cli_main
from tests.integration.fake_api import ApiFailure, LocalServer, fake_app

KEYS = {"admin-key": "admin", "viewer-key": "viewer"}
NOW = "2026-01-01T00:00:00Z"
ACTIONS = {"reject", "flag", "ignore"}
KNOWN_CODES = {"blurry", "dark", "truncated", "near_duplicate", "exact_duplicate"}
DEFAULT_THRESHOLDS = {"blurry": 0.35, "dark": 40.0}

ORIGINAL = "11111111-1111-4111-8111-111111111111"
BLURRY = "22222222-2222-4222-8222-222222222222"
GOOD = "33333333-3333-4333-8333-333333333333"
EXACT = "44444444-4444-4444-8444-444444444444"
PENDING = "55555555-5555-4555-8555-555555555555"
DATASET_ID = "99999999-9999-4999-8999-999999999999"


def _report(asset_id: str, **overrides: Any) -> dict[str, Any]:
    report = {
        "asset_id": asset_id,
        "dataset_id": DATASET_ID,
        "media_type": "image/jpeg",
        "status": "cleaned",
        "reasons": [],
        "flags": [],
        "metrics": {"edge_sharpness": 0.91, "mean_luminance": 121.5, "shortest_side": 480.0},
        "duplicate_of": None,
        "duplicate_kind": None,
        "duplicate_distance": None,
        "policy_version": 0,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return {**report, **overrides}


BLURRY_REPORT = _report(
    BLURRY,
    status="rejected",
    reasons=[
        {
            "code": "blurry",
            "message": "image is blurry: edge_sharpness 0.1234 < 0.35",
            "value": 0.12341,
            "threshold": 0.35,
        },
        {
            "code": "near_duplicate",
            "message": f"a near copy of asset {ORIGINAL} (pHash distance 3)",
            "value": 3.0,
            "threshold": 6.0,
        },
    ],
    flags=[
        {
            "code": "grayscale_as_colour",
            "message": "grayscale image stored as colour: colour_spread 1.2 < 4",
            "value": 1.2,
            "threshold": 4.0,
        }
    ],
    metrics={"edge_sharpness": 0.12341, "mean_luminance": 98.0, "colour_spread": 1.2},
    duplicate_of=ORIGINAL,
    duplicate_kind="near_duplicate",
    duplicate_distance=3,
    policy_version=2,
)

SUMMARY = {
    "dataset_slug": "cars",
    "assets": 8,
    "cleaned": 6,
    "rejected": 2,
    "rejections_by_reason": {"blurry": 1, "near_duplicate": 1, "exact_duplicate": 1},
    "flags_by_reason": {"grayscale_as_colour": 1, "blurry": 2},
    "metric_distributions": {
        "mean_luminance": {"min": 12.0, "p05": 20.25, "p50": 118.5, "p95": 201.0, "max": 230.0},
        "edge_sharpness": {"min": 0.05, "p05": 0.1, "p50": 0.7, "p95": 1.25, "max": 1.5},
    },
}

GROUPS = {
    "dataset_slug": "cars",
    "groups": [
        {
            "original": ORIGINAL,
            "copies": [
                {"asset_id": EXACT, "kind": "exact_duplicate", "distance": 0},
                {"asset_id": BLURRY, "kind": "near_duplicate", "distance": 3},
            ],
        },
        {
            "original": GOOD,
            "copies": [{"asset_id": PENDING, "kind": "near_duplicate", "distance": 5}],
        },
    ],
}


def _policy(slug: str, version: int, rules: dict[str, Any]) -> dict[str, Any]:
    thresholds = {**DEFAULT_THRESHOLDS, **rules.get("thresholds", {})}
    checks = {}
    for code in sorted(KNOWN_CODES):
        measured = code in DEFAULT_THRESHOLDS
        checks[code] = {
            "action": rules.get("actions", {}).get(code, "reject"),
            "metric": {"blurry": "edge_sharpness", "dark": "mean_luminance"}.get(code),
            "threshold": thresholds[code] if measured else None,
            "fails_when": "below" if measured else None,
            "default_threshold": DEFAULT_THRESHOLDS[code] if measured else None,
        }
    return {
        "dataset_slug": slug,
        "version": version,
        "near_duplicate_radius": rules.get("near_duplicate_radius", 6),
        "checks": checks,
    }


def _validation_errors(body: Any) -> list[dict[str, Any]]:
    """The problems the real service reports for a policy body, in its 422 shape."""
    if not isinstance(body, dict):
        return [{"loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type"}]
    errors = []
    for key in body:
        if key not in {"actions", "thresholds", "near_duplicate_radius"}:
            errors.append(
                {"loc": ["body", key], "msg": "Extra inputs are not permitted", "type": "x"}
            )
    for code, action in body.get("actions", {}).items():
        if action not in ACTIONS:
            msg = "Input should be 'reject', 'flag' or 'ignore'"
            errors.append({"loc": ["body", "actions", code], "msg": msg, "type": "literal_error"})
    unknown = sorted(
        (set(body.get("actions", {})) - KNOWN_CODES)
        | (set(body.get("thresholds", {})) - set(DEFAULT_THRESHOLDS))
    )
    if not errors and unknown:
        msg = f"Value error, unknown check code(s): {', '.join(unknown)}"
        errors.append({"loc": ["body"], "msg": msg, "type": "value_error"})
    return errors


@dataclass
class State:
    datasets: set[str] = field(default_factory=set)
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    # what ingest knows: asset id -> asset
    assets: dict[str, dict[str, Any]] = field(default_factory=dict)
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: dict[str, dict[str, Any]] = field(default_factory=dict)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    policy_bodies: list[Any] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)


def build_app(state: State) -> FastAPI:
    app = fake_app(lambda method, path: state.requests.append((method, path)))

    def role(request: Request, needed: str | None = None) -> None:
        key = request.headers.get("x-api-key")
        if key not in KEYS:
            raise ApiFailure(401, "invalid_api_key", "API key is unknown or revoked")
        if needed and KEYS[key] != needed:
            raise ApiFailure(403, "forbidden", f"this needs the {needed} role; the key has viewer")

    def dataset(slug: str) -> None:
        if slug not in state.datasets:
            raise ApiFailure(404, "dataset_not_found", f"no dataset with slug {slug!r} seen yet")

    @app.get("/v1/assets/{asset_id}/quality")
    async def report(asset_id: str, request: Request) -> dict[str, Any]:
        role(request)
        if asset_id not in state.reports:
            raise ApiFailure(404, "report_not_found", f"no quality report for asset {asset_id} yet")
        return state.reports[asset_id]

    @app.get("/v1/assets/{asset_id}")
    async def ingest_asset(asset_id: str, request: Request) -> dict[str, Any]:
        role(request)
        if asset_id not in state.assets:
            raise ApiFailure(404, "asset_not_found", f"no asset {asset_id}")
        return state.assets[asset_id]

    @app.get("/v1/datasets/{slug}/quality")
    async def summary(slug: str, request: Request) -> dict[str, Any]:
        role(request)
        dataset(slug)
        return state.summaries[slug]

    @app.get("/v1/datasets/{slug}/duplicates")
    async def duplicates(slug: str, request: Request) -> dict[str, Any]:
        role(request)
        dataset(slug)
        return state.duplicates.get(slug, {"dataset_slug": slug, "groups": []})

    @app.get("/v1/datasets/{slug}/policy")
    async def get_policy(slug: str, request: Request) -> dict[str, Any]:
        role(request)
        dataset(slug)
        return state.policies.get(slug, _policy(slug, 0, {}))

    @app.put("/v1/datasets/{slug}/policy")
    async def set_policy(slug: str, request: Request) -> dict[str, Any]:
        role(request, "admin")
        dataset(slug)
        body = await request.json()
        state.policy_bodies.append(body)
        errors = _validation_errors(body)
        if errors:
            raise ApiFailure(422, "validation_error", "request is invalid", errors=errors)
        version = state.policies.get(slug, {"version": 0})["version"] + 1
        state.policies[slug] = _policy(slug, version, body)
        return {"policy_version": version, "assets_checked": 8, "assets_changed": 3}

    return app


@pytest.fixture(scope="module")
def server_state() -> Iterator[tuple[LocalServer, State]]:
    shared = State()
    with LocalServer(build_app(shared)) as server:
        yield server, shared


@pytest.fixture
def state(server_state: tuple[LocalServer, State]) -> State:
    """The server's state, filled with one dataset ``cars`` for this test."""
    shared = server_state[1]
    shared.__dict__.update(vars(State()))
    shared.datasets.add("cars")
    shared.reports = {BLURRY: BLURRY_REPORT, GOOD: _report(GOOD)}
    shared.assets = {
        a: {"id": a, "dataset_slug": "cars", "created_at": NOW} for a in (BLURRY, GOOD, PENDING)
    }
    shared.summaries["cars"] = SUMMARY
    shared.duplicates["cars"] = GROUPS
    return shared


@pytest.fixture
def url(server_state: tuple[LocalServer, State]) -> str:
    return server_state[0].url


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CONVEYOR_API_KEY", "CONVEYOR_INGEST_URL", "CONVEYOR_CLEAN_URL"):
        monkeypatch.delenv(name, raising=False)


def run(url: str, *args: str, key: str = "viewer-key") -> Result:
    base = ["--ingest-url", url, "--clean-url", url, "--api-key", key]
    return CliRunner().invoke(cli_main.app, [*base, *args], env={"COLUMNS": "200"})


def rows(text: str) -> list[list[str]]:
    """The cells of every table row in ``text`` (rich box drawing)."""
    return [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in text.splitlines()
        if line.count("│") >= 3
    ]


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# =========================================================================== report


def test_report_lists_every_finding_with_its_value_threshold_and_message(
    url: str, state: State
) -> None:
    result = run(url, "quality", "report", BLURRY)

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"Quality report of asset {BLURRY}" in out
    table = rows(out)
    assert ["status", "rejected"] in table
    assert ["duplicate_of", ORIGINAL] in table
    assert ["duplicate_kind", "near_duplicate"] in table
    assert ["duplicate_distance", "3"] in table
    assert ["policy_version", "2"] in table
    assert [
        "reject",
        "blurry",
        "0.1234",
        "0.35",
        "image is blurry: edge_sharpness 0.1234 < 0.35",
    ] in table
    assert [
        "reject",
        "near_duplicate",
        "3",
        "6",
        f"a near copy of asset {ORIGINAL} (pHash distance 3)",
    ] in table
    assert next(r for r in table if r[1] == "grayscale_as_colour")[:4] == [
        "flag",
        "grayscale_as_colour",
        "1.2",
        "4",
    ]
    assert ["edge_sharpness", "0.1234"] in table
    assert state.requests == [("GET", f"/v1/assets/{BLURRY}/quality")]


def test_report_of_a_clean_asset_says_every_check_passed(url: str, state: State) -> None:
    result = run(url, "quality", "report", GOOD)

    assert result.exit_code == 0, result.output
    assert "Findings: none, every check passed" in result.stdout
    assert ["status", "cleaned"] in rows(result.stdout)
    assert "duplicate_of" not in result.stdout  # only shown for duplicates


def test_report_json_is_the_raw_answer(url: str, state: State) -> None:
    assert as_json(run(url, "--json", "quality", "report", BLURRY)) == BLURRY_REPORT


def test_missing_report_of_an_existing_asset_says_it_is_not_judged_yet(
    url: str, state: State
) -> None:
    result = run(url, "quality", "report", PENDING)

    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == f"error: report_not_found: no quality report for asset {PENDING} yet"
    assert lines[1].startswith("  the asset exists (dataset cars, uploaded 2026-01-01T00:00:00Z)")
    assert "has no verdict yet" in lines[1] and "retry in a few seconds" in lines[1]
    assert result.stdout == ""


def test_missing_report_of_an_unknown_asset_says_to_check_the_id(url: str, state: State) -> None:
    unknown = str(uuid.uuid4())
    result = run(url, "quality", "report", unknown)

    assert result.exit_code == 1
    assert result.stderr.splitlines()[1:] == [
        "  ingest has no asset with this id either: check the id"
    ]
    # Clean first, then ingest to tell "unknown" from "not judged yet".
    assert state.requests == [
        ("GET", f"/v1/assets/{unknown}/quality"),
        ("GET", f"/v1/assets/{unknown}"),
    ]


def test_invalid_key_is_one_error_line(url: str, state: State) -> None:
    result = run(url, "quality", "report", BLURRY, key="wrong")
    assert result.exit_code == 1
    assert result.stderr == "error: invalid_api_key: API key is unknown or revoked\n"


# =========================================================================== summary


def test_summary_shows_counts_issues_and_percentiles(url: str, state: State) -> None:
    result = run(url, "quality", "summary", "--dataset", "cars")

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Quality of dataset cars" in out
    table = rows(out)
    assert ["8", "6 (75.0%)", "2 (25.0%)"] in table
    # Most frequent issue first, ties by name; each with how often it rejected and flagged.
    issues = [r for r in table if len(r) == 3 and r[0] in {*SUMMARY["flags_by_reason"], "blurry"}]
    assert issues[:1] == [["blurry", "1", "2"]]
    assert ["exact_duplicate", "1", "0"] in table
    assert ["grayscale_as_colour", "0", "1"] in table
    assert ["edge_sharpness", "0.05", "0.1", "0.7", "1.25", "1.5"] in table
    assert ["mean_luminance", "12", "20.25", "118.5", "201", "230"] in table


def test_summary_json_is_the_raw_answer(url: str, state: State) -> None:
    assert as_json(run(url, "--json", "quality", "summary", "-d", "cars")) == SUMMARY


@pytest.mark.parametrize(
    "command",
    [["summary"], ["duplicates"], ["policy", "get"], ["policy", "set", "--action", "dark=flag"]],
)
def test_unknown_dataset_is_reported_with_a_hint(
    url: str, state: State, command: list[str]
) -> None:
    result = run(url, "quality", *command, "--dataset", "nope", key="admin-key")

    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "error: dataset_not_found: no dataset with slug 'nope' seen yet"
    assert lines[1].startswith("  clean knows a dataset once ingest has announced it")
    assert "conveyor datasets list" in lines[1]


# =========================================================================== duplicates


def test_duplicates_lists_each_original_with_its_copies(url: str, state: State) -> None:
    result = run(url, "quality", "duplicates", "--dataset", "cars")

    assert result.exit_code == 0, result.output
    assert "original (kept)" in result.stdout
    assert rows(result.stdout) == [
        [ORIGINAL, EXACT, "exact_duplicate", "0"],
        ["", BLURRY, "near_duplicate", "3"],
        [GOOD, PENDING, "near_duplicate", "5"],
    ]
    assert result.stdout.rstrip().endswith("2 groups, 3 copies")


def test_duplicates_of_a_dataset_without_any(url: str, state: State) -> None:
    state.duplicates.clear()
    result = run(url, "quality", "duplicates", "--dataset", "cars")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Duplicate groups of cars: no duplicates"


def test_duplicates_json_is_the_raw_answer(url: str, state: State) -> None:
    assert as_json(run(url, "--json", "quality", "duplicates", "--dataset", "cars")) == GROUPS


# =========================================================================== policy


def test_policy_get_shows_every_check_and_marks_changed_thresholds(url: str, state: State) -> None:
    state.policies["cars"] = _policy(
        "cars", 3, {"actions": {"dark": "flag"}, "thresholds": {"blurry": 0.2}}
    )

    result = run(url, "quality", "policy", "get", "--dataset", "cars")

    assert result.exit_code == 0, result.output
    table = rows(result.stdout)
    assert ["version", "3"] in table
    assert ["near_duplicate_radius", "6"] in table
    assert ["blurry", "reject", "edge_sharpness", "below", "0.2 *", "0.35"] in table
    assert ["dark", "flag", "mean_luminance", "below", "40", "40"] in table
    assert ["truncated", "reject", "-", "-", "-", "-"] in table


def test_policy_get_of_an_unchanged_policy_says_all_defaults(url: str, state: State) -> None:
    result = run(url, "quality", "policy", "get", "--dataset", "cars")
    assert ["version", "0 (never changed: all defaults)"] in rows(result.stdout)
    raw = as_json(run(url, "--json", "quality", "policy", "get", "--dataset", "cars"))
    assert raw == _policy("cars", 0, {})


def test_policy_set_sends_the_file_with_the_options_laid_over_it(
    tmp_path: Path, url: str, state: State
) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(
        json.dumps({"actions": {"blurry": "reject", "dark": "flag"}, "thresholds": {"dark": 30}})
    )

    result = run(
        url,
        "quality",
        "policy",
        "set",
        "--dataset",
        "cars",
        "--file",
        str(policy),
        "--action",
        "blurry=flag",
        "--threshold",
        "blurry=0.3",
        "--near-duplicate-radius",
        "4",
        key="admin-key",
    )

    assert result.exit_code == 0, result.output
    assert state.policy_bodies == [
        {
            "actions": {"blurry": "flag", "dark": "flag"},
            "thresholds": {"dark": 30, "blurry": 0.3},
            "near_duplicate_radius": 4,
        }
    ]
    assert result.stdout.strip() == (
        "policy of dataset cars is now version 1: re-judged 8 assets, 3 changed verdict"
    )


def test_policy_set_json_is_the_raw_answer(url: str, state: State) -> None:
    result = run(
        url,
        "--json",
        "quality",
        "policy",
        "set",
        "-d",
        "cars",
        "--action",
        "dark=ignore",
        key="admin-key",
    )
    assert as_json(result) == {"policy_version": 1, "assets_checked": 8, "assets_changed": 3}
    assert state.policy_bodies == [{"actions": {"dark": "ignore"}}]


def test_policy_refused_by_the_service_is_explained_field_by_field(
    tmp_path: Path, url: str, state: State
) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"actions": {"blurry": "maybe"}, "colour": 1}))

    result = run(url, "quality", "policy", "set", "-d", "cars", "-f", str(policy), key="admin-key")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: validation_error: request is invalid",
        "  colour: Extra inputs are not permitted",
        "  actions.blurry: Input should be 'reject', 'flag' or 'ignore'",
        "  the policy was not changed; 'conveyor quality policy get --dataset cars' lists the"
        f" check codes (policy read from {policy})",
    ]
    assert "cars" not in state.policies


def test_unknown_check_code_is_reported_without_pydantic_noise(url: str, state: State) -> None:
    result = run(
        url, "quality", "policy", "set", "-d", "cars", "--action", "nope=flag", key="admin-key"
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines()[1] == "  unknown check code(s): nope"


def test_policy_set_with_a_viewer_key_is_forbidden(url: str, state: State) -> None:
    result = run(url, "quality", "policy", "set", "-d", "cars", "--action", "dark=flag")
    assert result.exit_code == 1
    assert result.stderr == "error: forbidden: this needs the admin role; the key has viewer\n"


# =========================================================================== transport


def test_clean_url_and_key_from_environment(url: str, state: State) -> None:
    result = CliRunner().invoke(
        cli_main.app,
        ["--json", "quality", "summary", "--dataset", "cars"],
        env={"CONVEYOR_API_KEY": "viewer-key", "CONVEYOR_CLEAN_URL": url},
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["assets"] == 8


def test_connection_refused_names_the_clean_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"

    result = run(dead, "quality", "summary", "--dataset", "cars")

    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot reach clean at {dead} (ConnectError")
    assert "Traceback" not in result.output


def test_a_url_that_is_not_the_clean_service_gets_a_hint(url: str, state: State) -> None:
    wrong = f"{url}/not-clean"
    result = CliRunner().invoke(
        cli_main.app,
        ["--clean-url", wrong, "--api-key", "viewer-key", "quality", "summary", "-d", "cars"],
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: http_404: Not Found",
        f"  is --clean-url ({wrong}) the clean service?",
    ]
