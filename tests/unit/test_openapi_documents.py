"""Each service's OpenAPI document declares the errors its routes can answer, and their body.

Clients (the CLI, schemathesis in tests/e2e/test_api_contract.py) trust the document: a
status a route can answer but does not declare, or an error body described as anything but
``ErrorBody``, is a broken contract. Building an app connects nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from services.audit.app import create_audit_app
from services.clean.app import create_clean_app
from services.dashboard.app import create_dashboard_app
from services.ingest.app import create_ingest_app
from services.labeling_dispatch.app import create_labeling_app
from services.qc.app import create_qc_app

APPS: dict[str, Callable[[], FastAPI]] = {
    "ingest": create_ingest_app,
    "clean": create_clean_app,
    "audit": create_audit_app,
    "labeling": create_labeling_app,
    "qc": create_qc_app,
    "dashboard": create_dashboard_app,
}
ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}
# The shell's own routes: open to anyone, and /readyz's 503 is its readiness report.
SHELL_PATHS = {"/healthz", "/readyz", "/metrics"}


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) of every operation in the document."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


@pytest.fixture(scope="module", params=sorted(APPS))
def document(request: pytest.FixtureRequest) -> dict[str, Any]:
    document: dict[str, Any] = APPS[request.param]().openapi()
    return document


def test_every_operation_behind_a_key_declares_401_and_403(document: dict[str, Any]) -> None:
    missing = [
        f"{method} {path}"
        for method, path, operation in operations(document)
        if operation.get("security") and not {"401", "403"} <= set(operation["responses"])
    ]
    assert not missing


# Vendors are not people with API keys: they show their own key on the task views and sign
# the webhook (Label Studio sends a shared token); those operations must document the header
# they authenticate with instead.
VENDOR_CREDENTIALS = {"x-vendor-key", "conveyor-signature", "x-conveyor-token"}


def _vendor_credential(operation: dict[str, Any]) -> bool:
    headers = {p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"}
    return bool(headers & VENDOR_CREDENTIALS) and "401" in operation["responses"]


def test_every_versioned_operation_needs_an_api_key(document: dict[str, Any]) -> None:
    open_routes = [
        f"{method} {path}"
        for method, path, operation in operations(document)
        if path.startswith("/v1/")
        and {"APIKeyHeader": []} not in operation.get("security", [])
        and not _vendor_credential(operation)
    ]
    assert not open_routes


def test_internal_operations_declare_401(document: dict[str, Any]) -> None:
    missing = [
        f"{method} {path}"
        for method, path, operation in operations(document)
        if path.startswith("/internal/") and "401" not in operation["responses"]
    ]
    assert not missing


def test_every_operation_with_parameters_or_a_body_declares_422(document: dict[str, Any]) -> None:
    missing = [
        f"{method} {path}"
        for method, path, operation in operations(document)
        if (operation.get("parameters") or "requestBody" in operation)
        and "422" not in operation["responses"]
    ]
    assert not missing


def test_every_operation_declares_what_the_shell_refuses(document: dict[str, Any]) -> None:
    """A NUL byte in the URL (400) and an oversized body (413) are refused before routing."""
    missing = [
        f"{method} {path}"
        for method, path, operation in operations(document)
        if not {"400", "413"} <= set(operation["responses"])
        or ("requestBody" in operation and "408" not in operation["responses"])
    ]
    assert not missing


def test_every_error_response_is_the_error_body(document: dict[str, Any]) -> None:
    wrong = [
        f"{method} {path} {status}"
        for method, path, operation in operations(document)
        for status, response in operation["responses"].items()
        if int(status) >= 400
        and not (path == "/readyz" and status == "503")
        and response.get("content", {}).get("application/json", {}).get("schema") != ERROR_BODY
    ]
    assert not wrong


def test_error_body_has_code_message_and_details(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["ErrorBody"]["required"] == ["error"]
    assert set(schemas["ErrorDetail"]["properties"]) == {"code", "message", "details"}


def test_fastapi_validation_error_shape_is_not_documented(document: dict[str, Any]) -> None:
    """The shell answers 422 with ErrorBody, never FastAPI's ``{"detail": [...]}``."""
    assert "HTTPValidationError" not in document["components"]["schemas"]
