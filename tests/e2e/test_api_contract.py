"""Every service's live API against its own OpenAPI document, fuzzed by schemathesis.

Runs schemathesis with every check it has (server errors, status codes, content types,
response schemas and headers, negative data rejected, positive data accepted, unsupported
methods and their Allow header, missing headers, ignored auth, use after free, resources
available after creation, ...) in all its phases (examples, coverage, fuzzing, stateful).
The coverage and fuzzing phases send NUL bytes, control characters and boundary values in
paths, query strings and bodies, and multipart uploads to the upload route.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from deploy.services import ServiceProcess
from shared.settings import DEV_WEBHOOK_TOKEN
from tests.conftest import ADMIN_KEY

# Enough to reach every status a route has while the whole file stays near a minute here.
MAX_EXAMPLES = 20
# A run that outlives this fails instead of holding the suite (and the stack lock) hostage.
RUN_DEADLINE_SECONDS = 300
REQUEST_TIMEOUT_SECONDS = 15


# What schemathesis accepts by default as the refusal of a schema-violating request.
NEGATIVE_STATUSES = [
    "400",
    "401",
    "403",
    "404",
    "405",
    "406",
    "409",
    "415",
    "422",
    "428",
    "429",
    "5xx",
]


def paged(path: str) -> dict[str, Any]:
    """A listing whose page cursor is opaque: only decoding one tells a forged one apart (400)."""
    return {"include-path": path, "include-method": "GET", "statuses": ["400"]}


# Statuses a schema-valid request may still get, for rules JSON Schema cannot state. Each
# entry names the operation and why; nothing else is relaxed.
CONTENT_RULES: dict[str, list[dict[str, Any]]] = {
    "ingest": [
        {
            # The type is sniffed from the bytes (415), an empty file is refused (422) and the
            # size limit is a setting (413): "format: binary" cannot say any of that.
            # schemathesis 4.32 judges a stateful step listing this path's assets (forged
            # cursor: 400) by the rules of the upload on the same path, hence 400 here too.
            "include-path": "/v1/datasets/{slug}/assets",
            "include-method": "POST",
            "statuses": ["400", "413", "415", "422"],
            # multipart/form-data carries every field as text: a "wrongly typed" tags value
            # (a number, a single string for the array) is sent as the very bytes of a valid
            # tag, so negative-data checks cannot tell the two apart here. Wrong files, empty
            # files and unfit tags are refused and tested in tests/integration.
            "negative": False,
        },
        {
            # The datasets named must exist, and an admin key cannot be limited (422).
            "include-path-regex": "^/v1/api-keys",
            "statuses": ["422"],
        },
        paged("/v1/datasets"),
        paged("/v1/datasets/{slug}/assets"),
    ],
    "clean": [paged("/v1/datasets/{slug}/reanalyses")],
    "audit": [paged("/v1/audit/records")],
    "labeling": [
        {
            # A vendor's url must be http(s) with a host (JSON Schema's "uri" format allows
            # any scheme), and an ontology's rules span fields: class and attribute names
            # unique, values only on enum attributes, keypoint names only on keypoint classes.
            # schemathesis applies the first block whose path matches to every method of the
            # path, so this one also carries the listings' forged-cursor 400.
            "include-path-regex": "^/v1/(vendors|ontologies)",
            "statuses": ["400", "422"],
        },
        *(
            paged(path)
            for path in (
                "/v1/ontologies",
                "/v1/vendors",
                "/v1/jobs",
                "/v1/tasks",
                "/v1/tasks/{task_id}/annotations",
                "/v1/tasks/{task_id}/refusals",
                "/v1/deliveries",
                "/v1/vendor/tasks",
            )
        ),
        *(
            {
                # A list longer than its maxItems can also be longer than the body limit
                # (2 MiB): then it is refused as too large (413) before it is parsed.
                "include-path": path,
                "include-method": "POST",
                "statuses": [],
                "negative-statuses": ["413"],
            }
            for path in ("/v1/jobs", "/v1/predictions")
        ),
    ],
    "qc": [
        paged("/v1/reviews"),
        paged("/v1/datasets/{dataset}/versions"),
        *(
            {
                # Accepted shapes need classes of the job's ontology and a geometry an export
                # can write; rework's task ids must be the asset's; a policy's class names must
                # be the ontology's: rules on the stored job, not the request's shape.
                "include-path": path,
                "include-method": method,
                "statuses": ["422"],
            }
            for path, method in (
                ("/v1/reviews/{job_id}/{asset_id}/accept", "POST"),
                ("/v1/reviews/{job_id}/{asset_id}/rework", "POST"),
                ("/v1/jobs/{job_id}/qc-policy", "PUT"),
            )
        ),
        *(
            {
                # A window whose since is not before its until (or out of range) is 400.
                "include-path": path,
                "statuses": ["400"],
            }
            for path in ("/v1/scorecards", "/v1/vendors/{vendor_id}/scorecard")
        ),
    ],
    "dashboard": [
        paged("/v1/cleaning/rejected"),
        *(
            {
                # A window whose since is not before its until is 400.
                "include-path": path,
                "statuses": ["400"],
            }
            for path in (
                "/v1/funnel",
                "/v1/throughput",
                "/v1/latency",
                "/v1/vendors",
                "/v1/cleaning/reasons",
                "/v1/cleaning/rejected",
                "/v1/cleaning/histograms",
            )
        ),
    ],
}


def config_toml(service: str) -> str:
    """schemathesis.toml for one service: the admin key, the webhook token, the bounds."""
    headers = {"X-API-Key": ADMIN_KEY}
    if service == "ingest":
        # The store's webhook takes a bearer token instead of an API key; give it the
        # token, so fuzzing reaches the notification parsing instead of stopping at 401.
        headers["Authorization"] = f"Bearer {DEV_WEBHOOK_TOKEN}"
    lines = [
        "seed = 1",
        f"request-timeout = {REQUEST_TIMEOUT_SECONDS}",
        "headers = { " + ", ".join(f'"{k}" = "{v}"' for k, v in headers.items()) + " }",
        f"generation.max-examples = {MAX_EXAMPLES}",
        'generation.database = "none"',
        "generation.allow-x00 = true",
        # every check (set here, not with --checks all, so that an operation below can turn
        # one off: the command line would override it)
        "checks.enabled = true",
        'checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", '
        '"409"]',
    ]
    for rule in CONTENT_RULES[service]:
        lines.append("[[operations]]")
        for key, value in rule.items():
            if key not in ("statuses", "negative", "negative-statuses"):
                lines.append(f'{key} = "{value}"')
        if rule.get("negative") is False:
            lines.append("checks.negative_data_rejection.enabled = false")
        if "negative-statuses" in rule:
            refused = [*NEGATIVE_STATUSES, *rule["negative-statuses"]]
            lines.append(
                f"checks.negative_data_rejection.expected-statuses = {json.dumps(refused)}"
            )
        expected = ["2xx", "3xx", "401", "403", "404", "409", *rule["statuses"]]
        lines.append(f"checks.positive_data_acceptance.expected-statuses = {json.dumps(expected)}")
    return "\n".join(lines) + "\n"


def run_schemathesis(service: str, base_url: str, workdir: Path) -> dict[str, Any]:
    """One schemathesis run over the service's whole document; its JSON report."""
    config = workdir / "schemathesis.toml"
    config.write_text(config_toml(service))
    report = workdir / "report.json"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{base_url}/openapi.json",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        # One worker: with two threads, CPython 3.11's ast.parse (which the fuzzer calls to
        # describe its strategies) sometimes fails with "AST constructor recursion depth
        # mismatch", a crash of the tool rather than a finding.
        "--workers",
        "1",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    started = time.monotonic()
    result = subprocess.run(
        command,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=RUN_DEADLINE_SECONDS,
        check=False,
    )
    (workdir / "output.txt").write_text(result.stdout + result.stderr)
    print(f"{service}: schemathesis ran {time.monotonic() - started:.0f} s; output in {workdir}")
    document: dict[str, Any] = json.loads(report.read_text())
    document["output"] = result.stdout[-30000:] + result.stderr[-3000:]
    return document


# Longest first, so that the two runs at a time finish close together.
SERVICES = ["labeling", "dashboard", "qc", "ingest", "audit", "clean"]


@pytest.fixture(scope="module")
def contract_runs(
    services: dict[str, ServiceProcess], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[dict[str, Any]]]]:
    """Every service's schemathesis run, two at a time: each run is one process that mostly
    waits on its service, so two share the machine's cores without slowing each other much."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield {
            service: pool.submit(
                run_schemathesis,
                service,
                services[service].url,
                tmp_path_factory.mktemp(f"contract-{service}"),
            )
            for service in SERVICES
        }


@pytest.mark.parametrize("service", SERVICES)
def test_api_answers_as_its_openapi_document_says(
    service: str, contract_runs: dict[str, Future[dict[str, Any]]]
) -> None:
    report = contract_runs[service].result()
    found = {f["code"]: (f["count"], f["operations"]) for f in report["failures"]}
    assert report["complete"], report["output"]
    assert not report["errors"], report["output"]
    assert not found, f"{found}\n{report['output']}"
