"""API-key authentication with three roles: admin > uploader > viewer.

Keys are random 256-bit tokens shown once and stored as their SHA-256 (a slow hash adds
nothing for keys of that entropy). The ingest service owns the key table; other services
ask it who a key belongs to (:class:`RemotePrincipalResolver`), with a short cache.
A bootstrap admin key from settings always works, so a fresh install can make its keys.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import logging
import re
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

import httpx
from aiokafka import AIOKafkaConsumer
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from shared.errors import ApiError
from shared.events import API_KEY_REVOKED, API_KEY_SCOPE_CHANGED, INGEST_EVENTS

log = logging.getLogger(__name__)

KEY_PREFIX = "cvk_"
# generate_api_key: the prefix and 32 random bytes in URL-safe base64 (43 characters).
_KEY_SHAPE = re.compile(re.escape(KEY_PREFIX) + r"[A-Za-z0-9_-]{43}")


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
    """Who is calling, and which datasets they may touch.

    ``datasets`` holds the ids (as strings) of the datasets the key is limited to; None
    means every dataset. Anything of another dataset is answered as if it did not exist.
    """

    key_id: str
    name: str
    role: Role
    datasets: frozenset[str] | None = None

    @property
    def scoped(self) -> bool:
        """Whether the key is limited to some datasets."""
        return self.datasets is not None

    def sees(self, dataset_id: uuid.UUID | str) -> bool:
        """Whether the key may touch the dataset ``dataset_id``."""
        return self.datasets is None or str(dataset_id) in self.datasets


def principal_from_me(body: dict[str, Any]) -> Principal:
    """A principal from ingest's ``GET /v1/auth/me`` answer."""
    scope = body.get("datasets")
    return Principal(
        str(body["key_id"]),
        str(body["name"]),
        Role(body["role"]),
        None if scope is None else frozenset(str(d) for d in scope),
    )


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
    """Asks the ingest service (owner of the key table) who a key is, caching answers briefly.

    The cache is bounded (least recently used answers go first). Unknown keys are cached
    too, for a shorter time, and lookups are coalesced and limited in number, so a flood of
    forged keys costs ingest a bounded number of calls instead of one per request. A key that
    cannot be a Conveyor key is refused without asking. :meth:`forget_key` drops a revoked
    key at once (see :class:`RevocationListener`).
    """

    def __init__(
        self,
        ingest_url: str,
        ttl_seconds: float = 30.0,
        *,
        negative_ttl_seconds: float = 5.0,
        max_entries: int = 10_000,
        max_concurrent_lookups: int = 8,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(base_url=ingest_url, timeout=5.0, transport=transport)
        self._ttl = ttl_seconds
        self._negative_ttl = negative_ttl_seconds
        self._max_entries = max_entries
        self._cache: OrderedDict[str, tuple[float, Principal | None]] = OrderedDict()
        self._pending: dict[str, asyncio.Future[Principal | None]] = {}
        self._lookups = asyncio.Semaphore(max_concurrent_lookups)

    async def resolve(self, key: str) -> Principal | None:
        """The principal for ``key`` according to ingest."""
        if not looks_like_api_key(key):
            return None
        cache_key = hash_api_key(key)
        hit = self._cache.get(cache_key)
        now = time.monotonic()
        if hit is not None:
            ttl = self._ttl if hit[1] is not None else self._negative_ttl
            if now - hit[0] < ttl:
                self._cache.move_to_end(cache_key)
                return hit[1]
            del self._cache[cache_key]
        pending = self._pending.get(cache_key)
        if pending is not None:  # the same key is being looked up: share that answer
            return await asyncio.shield(pending)
        future: asyncio.Future[Principal | None] = asyncio.get_running_loop().create_future()
        self._pending[cache_key] = future
        try:
            principal = await self._ask_ingest(key)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            del self._pending[cache_key]
        future.set_result(principal)
        self._remember(cache_key, principal)
        return principal

    async def _ask_ingest(self, key: str) -> Principal | None:
        async with self._lookups:
            try:
                response = await self._client.get("/v1/auth/me", headers={"X-API-Key": key})
            except httpx.HTTPError as exc:
                raise ApiError(
                    503, "auth_unavailable", f"cannot reach ingest to check key: {exc}"
                ) from exc
        if response.status_code == 200:
            return principal_from_me(response.json())
        if response.status_code != 401:
            raise ApiError(503, "auth_unavailable", f"ingest answered {response.status_code}")
        return None

    def _remember(self, cache_key: str, principal: Principal | None) -> None:
        self._cache[cache_key] = (time.monotonic(), principal)
        self._cache.move_to_end(cache_key)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)

    def forget_key(self, key_id: str) -> int:
        """Drop the cached answers for a key id (it was revoked); how many were dropped."""
        stale = [k for k, (_, p) in self._cache.items() if p is not None and p.key_id == key_id]
        for cache_key in stale:
            del self._cache[cache_key]
        return len(stale)

    @property
    def cached(self) -> int:
        """How many answers are cached."""
        return len(self._cache)

    async def close(self) -> None:
        """Release the HTTP client."""
        await self._client.aclose()


def looks_like_api_key(key: str) -> bool:
    """Whether ``key`` has the shape of a key :func:`generate_api_key` makes."""
    return _KEY_SHAPE.fullmatch(key) is not None


# A revoked key must stop working, and a key whose datasets changed must see only its new ones.
_KEY_CHANGES = {API_KEY_REVOKED.name.encode(), API_KEY_SCOPE_CHANGED.name.encode()}


class RevocationListener:
    """Drops revoked (or re-scoped) keys from a resolver's cache as soon as ingest says so.

    Every process reads ``conveyor.ingest.events`` on its own, outside any consumer group,
    from the newest offset: a consumer group would hand each revocation to one process only.
    Only the CloudEvents type header is read; other events are skipped without decoding.
    """

    def __init__(self, resolver: RemotePrincipalResolver, bootstrap_servers: str) -> None:
        self._resolver = resolver
        self._bootstrap = bootstrap_servers
        self.listening = asyncio.Event()

    async def run(self) -> None:
        """Listen until cancelled."""
        consumer = AIOKafkaConsumer(
            INGEST_EVENTS.name,
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            fetch_max_wait_ms=100,
        )
        await consumer.start()
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=500)
                if consumer.assignment() and not self.listening.is_set():
                    # From here on nothing announced is missed: the start offsets are fixed.
                    for partition in consumer.assignment():
                        await consumer.position(partition)
                    self.listening.set()
                for records in batch.values():
                    for record in records:
                        self._apply(record.headers)
        finally:
            await consumer.stop()

    def _apply(self, headers: Sequence[tuple[str, bytes]]) -> None:
        if dict(headers).get("ce_type") not in _KEY_CHANGES:
            return
        subject = dict(headers).get("ce_subject")
        if subject:
            dropped = self._resolver.forget_key(subject.decode())
            log.info("api key %s changed; %d cached answers dropped", subject.decode(), dropped)


api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Conveyor API key")


async def authenticate(
    request: Request, key: Annotated[str | None, Depends(api_key_header)]
) -> Principal:
    """The caller, or 401 (called by :func:`require`'s dependency; a dependency itself too)."""
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
    """FastAPI dependency factory: the caller, if their role is at least ``role``, else 403.

    One dependency that authenticates itself, not one depending on :func:`authenticate`:
    every request then solves a level of dependencies less.
    """

    async def _check(
        request: Request, key: Annotated[str | None, Depends(api_key_header)]
    ) -> Principal:
        principal = await authenticate(request, key)
        if principal.role.rank < role.rank:
            raise ApiError(
                403, "forbidden", f"this needs the {role.value} role; the key has {principal.role}"
            )
        return principal

    return Depends(_check)
