"""Labeling-dispatch's use cases in process on the real Postgres: vendors, jobs, tasks."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.labeling_dispatch.context import SOURCE, Labeling
from services.labeling_dispatch.models import Vendor, inbox, outbox
from services.labeling_dispatch.settings import LabelingSettings
from services.labeling_dispatch.use_cases import vendors
from shared.auth import Principal, Role
from shared.errors import ApiError
from shared.storage import ObjectStore
from shared.uow import UnitsOfWork

ADMIN = Principal("admin-key", "tester", Role.admin)
SCOPED_ADMIN = Principal("scoped-key", "scoped", Role.admin, frozenset({str(uuid.uuid4())}))


@pytest.fixture
async def labeling(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[Labeling]:
    """Labeling's context over the rolled-back sessions."""
    settings = LabelingSettings(consumer_group="test-labeling-use-cases")
    units = UnitsOfWork(
        sessions, outbox=outbox, inbox=inbox, source=SOURCE, consumer=settings.consumer_group
    )
    async with httpx.AsyncClient() as http:
        yield Labeling(settings, units, ObjectStore(settings), http)


async def new_vendor(labeling: Labeling, name: str = "acme") -> Vendor:
    vendor, _ = await vendors.create_vendor(
        labeling,
        ADMIN,
        name=name,
        kind="webhook",
        url="http://127.0.0.1:9/hook",
        capacity=10,
        batch_size=5,
    )
    return vendor


async def test_vendor_key_is_shown_once_and_found_by_its_hash(labeling: Labeling) -> None:
    vendor, credentials = await vendors.create_vendor(
        labeling,
        ADMIN,
        name="acme",
        kind="webhook",
        url="https://v.example/h",
        capacity=3,
        batch_size=2,
    )
    assert credentials.api_key.startswith("cvv_") and len(credentials.secret) == 64
    assert vendor.api_key_hash != credentials.api_key
    found = await vendors.vendor_for_key(labeling, credentials.api_key)
    assert found is not None and found.id == vendor.id
    assert await vendors.vendor_for_key(labeling, "cvv_nope") is None
    _, rotated = await vendors.rotate_credentials(labeling, ADMIN, vendor.id)
    assert await vendors.vendor_for_key(labeling, credentials.api_key) is None
    again = await vendors.vendor_for_key(labeling, rotated.api_key)
    assert again is not None and again.secret == rotated.secret


async def test_vendor_refusals(labeling: Labeling) -> None:
    await new_vendor(labeling)
    with pytest.raises(ApiError) as taken:
        await new_vendor(labeling)
    assert taken.value.status == 409
    with pytest.raises(ApiError) as kind:
        await vendors.create_vendor(
            labeling, ADMIN, name="ls", kind="label_studio", url=None, capacity=1, batch_size=1
        )
    assert kind.value.code == "unsupported_vendor_kind"
    with pytest.raises(ApiError) as scoped:
        await vendors.create_vendor(
            labeling,
            SCOPED_ADMIN,
            name="x",
            kind="webhook",
            url="http://a",
            capacity=1,
            batch_size=1,
        )
    assert scoped.value.status == 403


async def test_vendor_change_applies_only_given_settings(labeling: Labeling) -> None:
    vendor = await new_vendor(labeling)
    changed = await vendors.change_vendor(
        labeling, ADMIN, vendor.id, {"capacity": 7, "enabled": False}
    )
    assert (changed.capacity, changed.enabled, changed.batch_size) == (7, False, 5)
    async with labeling.units.read() as session:
        stored = (await session.execute(select(Vendor).where(Vendor.id == vendor.id))).scalar_one()
    assert stored.capacity == 7 and not stored.enabled
    with pytest.raises(ApiError) as missing:
        await vendors.change_vendor(labeling, ADMIN, uuid.uuid4(), {"capacity": 1})
    assert missing.value.status == 404
