"""Vendors: register, list, change, rotate credentials; find the vendor behind an X-Vendor-Key.

A vendor's API key and HMAC secret are made here and shown once: the key is stored as its
sha256 only, the secret as is (it must stay usable to sign and verify webhooks).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError

from services.labeling_dispatch.context import Labeling
from services.labeling_dispatch.models import Vendor
from services.labeling_dispatch.repository import vendors as repo
from services.labeling_dispatch.vendor_edges.label_studio_api import (
    LabelStudioApi,
    LabelStudioError,
)
from shared.auth import Principal
from shared.errors import ApiError
from shared.events import VendorChangedV1, VendorCreatedV1
from shared.paging import Cursor

VENDOR_KEY_PREFIX = "cvv_"
# The kinds this build can send tasks to; the API's enum may name more (answered 422).
SUPPORTED_KINDS = frozenset({"webhook", "label_studio"})


@dataclass(frozen=True)
class Credentials:
    """A vendor's API key and HMAC secret, as shown once."""

    api_key: str
    secret: str


def new_credentials() -> Credentials:
    """A fresh key and secret."""
    return Credentials(VENDOR_KEY_PREFIX + secrets.token_urlsafe(32), secrets.token_hex(32))


def vendor_key_hash(key: str) -> str:
    """The stored form of a vendor's API key."""
    return hashlib.sha256(key.encode()).hexdigest()


async def vendor_for_key(labeling: Labeling, key: str) -> Vendor | None:
    """The vendor an ``X-Vendor-Key`` belongs to (enabled or not: the caller decides), or None."""
    if not key.startswith(VENDOR_KEY_PREFIX):
        return None
    async with labeling.units.read() as session:
        return await repo.vendor_by_key_hash(session, vendor_key_hash(key))


def require_vendor_admin(principal: Principal) -> None:
    """Vendors span datasets: a key limited to some datasets may not register or change them."""
    if principal.scoped:
        raise ApiError(403, "forbidden", "a key limited to datasets cannot manage vendors")


async def create_vendor(
    labeling: Labeling,
    principal: Principal,
    *,
    name: str,
    kind: str,
    url: str | None,
    capacity: int,
    batch_size: int,
    token: str | None = None,
) -> tuple[Vendor, Credentials]:
    """Register a vendor; its credentials are returned here and never again.

    A Label Studio vendor's server and token are tried first (a 422 says what failed).
    """
    require_vendor_admin(principal)
    if kind not in SUPPORTED_KINDS:
        raise ApiError(
            422, "unsupported_vendor_kind", f"vendors of kind {kind!r} are not supported yet"
        )
    if kind == "webhook" and not url:
        raise ApiError(422, "url_required", "a webhook vendor needs a url")
    if token is not None and kind != "label_studio":
        raise ApiError(422, "token_not_allowed", "only a label_studio vendor takes a token")
    config: dict[str, Any] = {}
    if kind == "label_studio":
        url = url or labeling.settings.label_studio_url
        config["token"] = token or labeling.settings.label_studio_token
        await _check_label_studio(labeling, url, config["token"])
    credentials = new_credentials()
    vendor = Vendor(
        id=uuid.uuid4(),
        name=name,
        kind=kind,
        url=url,
        capacity=capacity,
        batch_size=batch_size,
        config=config,
        api_key_hash=vendor_key_hash(credentials.api_key),
        secret=credentials.secret,
        enabled=True,
        created_by=principal.name,
    )
    try:
        async with labeling.units.begin() as uow:
            if await repo.vendor_by_name(uow.session, name) is not None:
                raise _name_taken(name)
            await repo.insert_vendor(uow.session, vendor)
            uow.emit(
                VendorCreatedV1(
                    vendor_id=vendor.id,
                    name=name,
                    kind=kind,
                    capacity=capacity,
                    created_by=principal.name,
                ),
                subject=str(vendor.id),
                actor=principal.name,
            )
    except IntegrityError as exc:  # a concurrent create of the same name
        raise _name_taken(name) from exc
    return vendor, credentials


async def _check_label_studio(labeling: Labeling, url: str, token: str) -> None:
    """The server is allowed, answers, and the token is an admin's: a 422 naming the problem
    otherwise."""
    allowed = {h.strip() for h in labeling.settings.label_studio_allowed_hosts.split(",")} - {""}
    host = urlsplit(url).hostname or ""
    if allowed and host not in allowed:
        raise ApiError(
            422,
            "label_studio_host_not_allowed",
            f"Label Studio servers may be on {', '.join(sorted(allowed))} only, not {host!r}",
        )
    try:
        await LabelStudioApi(labeling.http, url, token, timeout=10.0).whoami()
    except LabelStudioError as exc:
        problem = "the token was refused" if exc.status_code in (401, 403) else str(exc)
        raise ApiError(
            422, "label_studio_unreachable", f"Label Studio at {url}: {problem}"[:500]
        ) from None


def _name_taken(name: str) -> ApiError:
    return ApiError(409, "vendor_exists", f"a vendor named {name!r} exists")


async def get_vendor(labeling: Labeling, vendor_id: uuid.UUID) -> Vendor:
    """A vendor, or 404."""
    async with labeling.units.read() as session:
        vendor = await repo.vendor_by_id(session, vendor_id)
    if vendor is None:
        raise vendor_not_found(vendor_id)
    return vendor


def vendor_not_found(vendor_id: uuid.UUID) -> ApiError:
    """The 404 for an unknown vendor id."""
    return ApiError(404, "vendor_not_found", f"no vendor {vendor_id}")


async def list_vendors(
    labeling: Labeling, limit: int, cursor: str | None
) -> tuple[list[Vendor], str | None]:
    """A page of vendors and the cursor of the next page (None on the last)."""
    after = Cursor.decode(cursor) if cursor else None
    async with labeling.units.read() as session:
        rows = await repo.list_vendors(session, limit + 1, after)
    next_cursor = None
    if len(rows) > limit:
        next_cursor = Cursor(rows[limit - 1].created_at, rows[limit - 1].id).encode()
    return rows[:limit], next_cursor


async def change_vendor(
    labeling: Labeling, principal: Principal, vendor_id: uuid.UUID, changes: dict[str, Any]
) -> Vendor:
    """Change a vendor's url, capacity, batch size or enabled flag (only the keys given)."""
    require_vendor_admin(principal)
    allowed = {"url", "capacity", "batch_size", "enabled"}
    values = {k: v for k, v in changes.items() if k in allowed}
    async with labeling.units.begin() as uow:
        vendor = await repo.vendor_by_id(uow.session, vendor_id)
        if vendor is None:
            raise vendor_not_found(vendor_id)
        if "url" in values and vendor.kind == "webhook" and not values["url"]:
            raise ApiError(422, "url_required", "a webhook vendor needs a url")
        values = {k: v for k, v in values.items() if getattr(vendor, k) != v}
        if values:
            await repo.update_vendor(uow.session, vendor_id, values)
            uow.emit(
                VendorChangedV1(
                    vendor_id=vendor_id, change=describe_change(values), changed_by=principal.name
                ),
                subject=str(vendor_id),
                actor=principal.name,
            )
        await uow.session.refresh(vendor)
    if values.get("enabled") is True:
        labeling.wake_dispatcher.set()
    return vendor


def describe_change(values: dict[str, Any]) -> str:
    """What an event says changed: ``disabled``, ``enabled``, or the settings' names."""
    parts = []
    if "enabled" in values:
        parts.append("enabled" if values["enabled"] else "disabled")
    settings = sorted(k for k in values if k != "enabled")
    if settings:
        parts.append("settings: " + ", ".join(settings))
    return "; ".join(parts)


async def rotate_credentials(
    labeling: Labeling, principal: Principal, vendor_id: uuid.UUID
) -> tuple[Vendor, Credentials]:
    """Replace a vendor's key and secret; the old ones stop working at once."""
    require_vendor_admin(principal)
    credentials = new_credentials()
    async with labeling.units.begin() as uow:
        vendor = await repo.vendor_by_id(uow.session, vendor_id)
        if vendor is None:
            raise vendor_not_found(vendor_id)
        await repo.update_vendor(
            uow.session,
            vendor_id,
            {"api_key_hash": vendor_key_hash(credentials.api_key), "secret": credentials.secret},
        )
        uow.emit(
            VendorChangedV1(
                vendor_id=vendor_id, change="credentials_rotated", changed_by=principal.name
            ),
            subject=str(vendor_id),
            actor=principal.name,
        )
        await uow.session.refresh(vendor)
    return vendor, credentials
