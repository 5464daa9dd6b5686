"""``conveyor quality`` without a server: policy input, number formatting, the clean client's
requests (mock transport), validation-error lines and usage errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from conveyor_cli.client import ApiError, CleanClient, error_from_response
from conveyor_cli.main import app
from conveyor_cli.quality import PolicyInputError, build_rules, load_policy_file, number

# Nothing listens here; a usage error must be reported before any connection attempt.
DEAD = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CONVEYOR_API_KEY", "CONVEYOR_INGEST_URL", "CONVEYOR_CLEAN_URL"):
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------- policy input


def test_options_are_laid_over_the_file_rules() -> None:
    base = {"actions": {"dark": "flag", "blurry": "reject"}, "near_duplicate_radius": 2}
    rules = build_rules(
        base,
        actions=["blurry=flag", " too_small = ignore "],
        thresholds=["blurry=0.3", "dark=30"],
        near_duplicate_radius=5,
    )
    assert rules == {
        "actions": {"dark": "flag", "blurry": "flag", "too_small": "ignore"},
        "thresholds": {"blurry": 0.3, "dark": 30.0},
        "near_duplicate_radius": 5,
    }
    assert base["actions"] == {"dark": "flag", "blurry": "reject"}  # the input is not mutated


def test_the_file_is_sent_as_is_without_options() -> None:
    # Unknown keys and codes are the service's call; it answers 422 listing each.
    assert build_rules({"thresholds": {"x": "y"}, "other": 1}) == {
        "thresholds": {"x": "y"},
        "other": 1,
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"actions": ["blurry"]}, "--action takes CODE=VALUE, e.g. --action blurry=flag"),
        ({"actions": ["=flag"]}, "--action takes CODE=VALUE"),
        ({"actions": ["blurry=maybe"]}, "the action must be one of reject, flag, ignore"),
        ({"thresholds": ["blurry="]}, "--threshold takes CODE=VALUE, e.g. --threshold blurry=0.3"),
        ({"thresholds": ["blurry=low"]}, "--threshold blurry=low: the threshold must be a number"),
        ({"thresholds": ["blurry=nan"]}, "the threshold must be a number"),
    ],
)
def test_malformed_options_are_refused(kwargs: dict[str, list[str]], message: str) -> None:
    with pytest.raises(PolicyInputError, match=message):
        build_rules(None, **kwargs)  # type: ignore[arg-type]


def test_an_option_cannot_merge_into_a_non_object_section() -> None:
    with pytest.raises(PolicyInputError, match='"actions" in the policy file must be an object'):
        build_rules({"actions": ["blurry"]}, actions=["blurry=flag"])


def test_policy_file_errors_say_what_is_wrong(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(PolicyInputError, match=f"cannot read policy file {missing}: No such file"):
        load_policy_file(str(missing))

    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "actions": {"blurry": "flag",}\n}')
    with pytest.raises(PolicyInputError, match=r"is not valid JSON: .* \(line 2, column 32\)"):
        load_policy_file(str(bad))

    listed = tmp_path / "list.json"
    listed.write_text('["blurry"]')
    with pytest.raises(PolicyInputError, match="must hold a JSON object such as"):
        load_policy_file(str(listed))


def test_policy_file_dash_reads_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO('{"actions": {"dark": "flag"}}'))
    assert load_policy_file("-") == {"actions": {"dark": "flag"}}


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, "-"), (3.0, "3"), (100_000_000, "100000000"), (0.123456, "0.1235"), (1e-5, "1e-05")],
)
def test_numbers_are_short_and_whole_numbers_stay_whole(value: float | None, shown: str) -> None:
    assert number(value) == shown


# --------------------------------------------------------------------------- client


def test_clean_client_routes_quote_segments_and_put_the_rules() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "PUT":
            return httpx.Response(
                200, json={"policy_version": 2, "assets_checked": 5, "assets_changed": 1}
            )
        return httpx.Response(200, json={})

    with CleanClient("http://clean.test/", "k", transport=httpx.MockTransport(handler)) as clean:
        clean.quality_report("a/b")
        clean.quality_summary("cars")
        clean.duplicates("cars")
        clean.get_policy("cars")
        result = clean.set_policy("c?rs", {"actions": {"blurry": "flag"}})

    assert [(r.method, r.url.raw_path) for r in seen] == [
        ("GET", b"/v1/assets/a%2Fb/quality"),
        ("GET", b"/v1/datasets/cars/quality"),
        ("GET", b"/v1/datasets/cars/duplicates"),
        ("GET", b"/v1/datasets/cars/policy"),
        ("PUT", b"/v1/datasets/c%3Frs/policy"),
    ]
    assert json.loads(seen[-1].content) == {"actions": {"blurry": "flag"}}
    assert {r.headers["X-API-Key"] for r in seen} == {"k"}
    # Re-judging a big dataset takes a while: the PUT waits longer than the 30 s default.
    assert seen[-1].extensions["timeout"]["read"] == 300.0
    assert seen[0].extensions["timeout"]["read"] == 30.0
    assert result["assets_changed"] == 1


def test_validation_errors_become_one_line_per_field() -> None:
    errors = [
        {"loc": ["body", "actions", "blurry"], "msg": "Input should be 'reject'", "type": "t"},
        {"loc": ["body"], "msg": "Value error, unknown check code(s): nope", "type": "t"},
        {"loc": ["query", "limit"], "msg": "too big", "type": "t"},
    ]
    body = {"error": {"code": "validation_error", "message": "request is invalid"}}
    body["error"]["details"] = {"errors": errors}  # type: ignore[index]
    err = error_from_response("clean", httpx.Response(422, json=body))
    err.hint = "nothing was changed"
    assert str(err) == "validation_error: request is invalid"
    assert err.explanation() == [
        "actions.blurry: Input should be 'reject'",
        "unknown check code(s): nope",
        "query.limit: too big",
        "nothing was changed",
    ]


def test_other_errors_explain_nothing_by_default() -> None:
    assert ApiError(service="clean", status=404, code="c", message="m").explanation() == []


# --------------------------------------------------------------------------- usage errors


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--clean-url", DEAD, "--ingest-url", DEAD, *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.stderr


def test_asset_id_must_be_a_uuid() -> None:
    code, err = invoke("--api-key", "k", "quality", "report", "cat.jpg")
    assert code == 2
    assert err.startswith("error: ASSET_ID must be an asset id (a UUID such as")


def test_policy_set_needs_something_to_set() -> None:
    code, err = invoke("--api-key", "k", "quality", "policy", "set", "--dataset", "cars")
    assert code == 2
    assert err.startswith("error: nothing to set: give --file FILE and/or --action")


def test_bad_policy_file_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "policy.json"
    bad.write_text("{actions: flag}")
    code, err = invoke("--api-key", "k", "quality", "policy", "set", "-d", "cars", "-f", str(bad))
    assert code == 2
    assert err.startswith(f"error: policy file {bad} is not valid JSON:")


def test_missing_key_is_reported_before_the_policy_file_is_read(tmp_path: Path) -> None:
    code, err = invoke("quality", "policy", "set", "-d", "cars", "-f", str(tmp_path / "none"))
    assert code == 2
    assert err.startswith("error: missing API key")


@pytest.mark.parametrize(
    "args",
    [
        ["quality", "summary"],  # --dataset missing
        ["quality", "report"],  # no id
        ["quality", "policy", "set", "-d", "cars", "--near-duplicate-radius", "-1"],
    ],
)
def test_bad_arguments_exit_2(args: list[str]) -> None:
    code, _ = invoke("--api-key", "k", *args)
    assert code == 2


def test_clean_url_without_scheme_is_rejected() -> None:
    result = CliRunner().invoke(
        app,
        ["--clean-url", "localhost:8002", "--api-key", "k", "quality", "summary", "-d", "x"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 2
    assert "must start with http:// or https://" in result.stderr
