"""Keys limited to some datasets (object-level authorisation) in ingest's use cases.

Another dataset's things must look exactly like missing ones (404), lists leave them out,
and only an admin changes a key's datasets, with an audited event.
"""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from services.ingest.context import Ingest
from services.ingest.models import outbox
from services.ingest.schemas import ApiKeyCreate, ApiKeyScope, DatasetCreate, DatasetOut
from services.ingest.use_cases import api_keys, assets, datasets, uploads
from services.ingest.use_cases.principals import resolve_principal
from shared.auth import Principal, Role
from shared.errors import ApiError
from shared.events import API_KEY_SCOPE_CHANGED
from tests.media import image

ADMIN = Principal(key_id="k-admin", name="admin", role=Role.admin)


async def new_dataset(ingest: Ingest) -> DatasetOut:
    slug = f"sc-{uuid.uuid4().hex[:10]}"
    return await datasets.create_dataset(ingest, ADMIN, DatasetCreate(slug=slug, name=slug))


async def key_for(ingest: Ingest, role: Role, *slugs: str) -> tuple[str, Principal]:
    body = ApiKeyCreate(name=f"{role}-key", role=role, datasets=list(slugs) or None)
    created = await api_keys.create_api_key(ingest, ADMIN, body)
    principal = await resolve_principal(ingest, created.key)
    assert principal is not None
    return str(created.id), principal


async def upload_one(ingest: Ingest, principal: Principal, slug: str) -> uuid.UUID:
    files = [uploads.IncomingFile("a.jpg", io.BytesIO(image()))]
    (item,) = await uploads.upload(ingest, principal, slug, files, [])
    return item.id


async def test_a_limited_key_sees_and_writes_only_its_datasets(ingest: Ingest) -> None:
    mine, other = await new_dataset(ingest), await new_dataset(ingest)
    _, alice = await key_for(ingest, Role.uploader, mine.slug)
    assert alice.datasets == frozenset({str(mine.id)})
    theirs = await upload_one(ingest, ADMIN, other.slug)

    ours = await upload_one(ingest, alice, mine.slug)
    assert (await assets.get_asset(ingest, alice, ours)).dataset_slug == mine.slug
    assert (await datasets.get_dataset(ingest, alice, mine.slug)).id == mine.id
    page = await datasets.list_datasets(ingest, alice, 500, None)
    assert [d.slug for d in page.items] == [mine.slug]

    refused: list[Any] = [
        datasets.get_dataset(ingest, alice, other.slug),
        assets.get_asset(ingest, alice, theirs),
        assets.list_assets(
            ingest,
            alice,
            other.slug,
            limit=10,
            cursor=None,
            media_type=None,
            source=None,
            tag=None,
            sha256=None,
        ),
        assets.lookup_hashes(ingest, alice, other.slug, ["0" * 64]),
        uploads.upload(
            ingest, alice, other.slug, [uploads.IncomingFile("b.jpg", io.BytesIO(image()))], []
        ),
    ]
    for call in refused:
        with pytest.raises(ApiError) as caught:
            await call
        # exactly what a missing dataset or asset answers
        assert caught.value.status == 404
        assert caught.value.code in {"dataset_not_found", "asset_not_found"}


async def test_a_limited_key_cannot_create_datasets(ingest: Ingest) -> None:
    mine = await new_dataset(ingest)
    _, alice = await key_for(ingest, Role.uploader, mine.slug)
    with pytest.raises(ApiError) as caught:
        await datasets.create_dataset(ingest, alice, DatasetCreate(slug="sc-new", name="n"))
    assert caught.value.status == 403


async def test_an_unlimited_key_sees_every_dataset(ingest: Ingest) -> None:
    first, second = await new_dataset(ingest), await new_dataset(ingest)
    _, bob = await key_for(ingest, Role.viewer)
    assert bob.datasets is None
    slugs = {d.slug for d in (await datasets.list_datasets(ingest, bob, 500, None)).items}
    assert {first.slug, second.slug} <= slugs


async def test_an_admin_changes_a_keys_datasets_and_the_change_is_announced(
    ingest: Ingest,
) -> None:
    first, second = await new_dataset(ingest), await new_dataset(ingest)
    key_id, _ = await key_for(ingest, Role.viewer, first.slug)
    changed = await api_keys.set_api_key_datasets(
        ingest, ADMIN, uuid.UUID(key_id), ApiKeyScope(datasets=[second.slug])
    )
    assert changed.datasets == [second.slug]
    lifted = await api_keys.set_api_key_datasets(
        ingest, ADMIN, uuid.UUID(key_id), ApiKeyScope(datasets=None)
    )
    assert lifted.datasets is None
    async with ingest.units.read() as session:
        rows = await session.execute(
            select(outbox.c.envelope)
            .where(outbox.c.envelope["type"].astext == API_KEY_SCOPE_CHANGED.name)
            .order_by(outbox.c.id)
        )
        announced = [envelope for (envelope,) in rows]
    assert [e["data"]["datasets"] for e in announced] == [[str(second.id)], None]
    assert {e["subject"] for e in announced} == {key_id}
    assert {e["actor"] for e in announced} == {"admin"}
    listed = {k.id: k for k in await api_keys.list_api_keys(ingest)}
    assert listed[uuid.UUID(key_id)].datasets is None


async def test_a_scope_naming_an_unknown_dataset_is_refused(ingest: Ingest) -> None:
    body = ApiKeyCreate(name="x", role=Role.viewer, datasets=["no-such-dataset"])
    with pytest.raises(ApiError) as caught:
        await api_keys.create_api_key(ingest, ADMIN, body)
    assert (caught.value.status, caught.value.code) == (422, "unknown_dataset")


async def test_an_admin_key_cannot_be_limited(ingest: Ingest) -> None:
    body = ApiKeyCreate(name="x", role=Role.admin, datasets=[(await new_dataset(ingest)).slug])
    with pytest.raises(ApiError) as caught:
        await api_keys.create_api_key(ingest, ADMIN, body)
    assert caught.value.status == 422


async def test_changing_the_datasets_of_an_unknown_key_is_404(ingest: Ingest) -> None:
    with pytest.raises(ApiError) as caught:
        await api_keys.set_api_key_datasets(ingest, ADMIN, uuid.uuid4(), ApiKeyScope(datasets=None))
    assert caught.value.status == 404
