"""Calling another service's API for detail, with the caller's own key (so its scopes hold),
never raising: a page shows what it got and names what failed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from services.dashboard.context import Dashboard


@dataclass(frozen=True)
class Upstream:
    """One call's outcome: its JSON body, or what went wrong."""

    body: Any = None
    status: int | None = None
    problem: str | None = None


async def call_upstream(
    dashboard: Dashboard,
    name: str,
    method: str,
    url: str,
    api_key: str,
    params: dict[str, str] | None = None,
) -> Upstream:
    """Call another service's API with the caller's key; never raises."""
    try:
        response = await dashboard.http.request(
            method,
            url,
            params=params,
            headers={"X-API-Key": api_key},
            timeout=dashboard.settings.upstream_timeout_seconds,
        )
    except httpx.HTTPError as exc:
        return Upstream(problem=f"{name}: unreachable ({type(exc).__name__})")
    if response.status_code != 200:
        return Upstream(
            status=response.status_code,
            problem=f"{name}: HTTP {response.status_code} {_error_message(response)}".rstrip(),
        )
    try:
        return Upstream(body=response.json(), status=200)
    except ValueError:
        return Upstream(status=200, problem=f"{name}: the answer is not JSON")


def _error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return ""
