"""API-key authentication with three roles: admin > uploader > viewer.

Keys are random 256-bit tokens shown once and stored as their SHA-256 (a slow hash adds
nothing for keys of that entropy). The ingest service owns the key table; other services
ask it who a key belongs to (:class:`RemotePrincipalResolver`), with a short cache.
A bootstrap admin key from settings always works, so a fresh install can make its keys.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Protocol

import httpx
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from shared.errors import ApiError

KEY_PREFIX = "cvk_"


class Role(enum.StrEnum):
    """What a key may do; each role includes the ones below it."""

    viewer = "viewer"
    uploader = "uploader"
    admin = "admin"

    @property
    def rank(self) -> int:
        """Position in the hierarchy (higher can do more)."""
        return list(Role).index(self)


@dataclass(frozen=True)
class Principal:
    """Who is calling."""

    key_id: str
    name: str
    role: Role


def generate_api_key() -> str:
    """A new random API key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


BOOTSTRAP_PRINCIPAL = Principal(key_id="bootstrap", name="bootstrap-admin", role=Role.admin)


class PrincipalResolver(Protocol):
    """Looks an API key up; None when it is unknown or revoked."""

    async def resolve(self, key: str) -> Principal | None: ...


class RemotePrincipalResolver:
    """Asks the ingest service (owner of the key table) who a key is, caching answers briefly."""

    def __init__(self, ingest_url: str, ttl_seconds: float = 30.0) -> None:
        self._client = httpx.AsyncClient(base_url=ingest_url, timeout=5.0)
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def resolve(self, key: str) -> Principal | None:
        """The principal for ``key`` according to ingest."""
        cache_key = hash_api_key(key)
        hit = self._cache.get(cache_key)
        now = time.monotonic()
        if hit and now - hit[0] < self._ttl:
            return hit[1]
        try:
            response = await self._client.get("/v1/auth/me", headers={"X-API-Key": key})
        except httpx.HTTPError as exc:
            raise ApiError(
                503, "auth_unavailable", f"cannot reach ingest to check key: {exc}"
            ) from exc
        principal: Principal | None = None
        if response.status_code == 200:
            body = response.json()
            principal = Principal(body["key_id"], body["name"], Role(body["role"]))
        elif response.status_code != 401:
            raise ApiError(503, "auth_unavailable", f"ingest answered {response.status_code}")
        self._cache[cache_key] = (now, principal)
        return principal

    async def close(self) -> None:
        """Release the HTTP client."""
        await self._client.aclose()


api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Conveyor API key")


async def authenticate(
    request: Request, key: Annotated[str | None, Depends(api_key_header)]
) -> Principal:
    """FastAPI dependency: the caller, or 401."""
    if not key:
        raise ApiError(401, "unauthenticated", "missing X-API-Key header")
    bootstrap: str = request.app.state.settings.bootstrap_admin_key
    if bootstrap and hmac.compare_digest(key.encode(), bootstrap.encode()):
        return BOOTSTRAP_PRINCIPAL
    resolver: PrincipalResolver = request.app.state.principal_resolver
    principal = await resolver.resolve(key)
    if principal is None:
        raise ApiError(401, "invalid_api_key", "API key is unknown or revoked")
    return principal


def require(role: Role) -> object:
    """FastAPI dependency factory: the caller, if their role is at least ``role``, else 403."""

    async def _check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.role.rank < role.rank:
            raise ApiError(
                403, "forbidden", f"this needs the {role.value} role; the key has {principal.role}"
            )
        return principal

    return Depends(_check)
