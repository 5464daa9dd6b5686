"""Clean's use cases in-process on the real Postgres (rolled back per test) and SeaweedFS."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.clean.checks.budget import DecodeBudget
from services.clean.context import SOURCE, Clean
from services.clean.models import QualityReport, inbox, outbox
from services.clean.near_index import NearIndex
from services.clean.policy import PolicyRules
from services.clean.settings import CleanSettings
from services.clean.use_cases import cleaning, datasets, policy, reports
from services.clean.use_cases.measuring import MissingObject
from shared.auth import Principal, Role
from shared.errors import ApiError
from shared.events import (
    ASSET_INGESTED,
    DATASET_CREATED,
    INGEST_EVENTS,
    AssetIngestedV1,
    DatasetCreatedV1,
    Envelope,
)
from shared.routing import Event
from shared.storage import RAW_BUCKET, ObjectStore, content_address
from shared.uow import UnitsOfWork

BOB = Principal(key_id="k-bob", name="bob", role=Role.admin)


@pytest.fixture
async def clean(sessions: async_sessionmaker[AsyncSession]) -> Clean:
    settings = CleanSettings(consumer_group="conveyor-clean-usecases")
    units = UnitsOfWork(
        sessions, outbox=outbox, inbox=inbox, source=SOURCE, consumer=settings.consumer_group
    )
    store = ObjectStore(settings)
    await store.ensure_buckets((RAW_BUCKET,))
    budget = DecodeBudget(settings.decode_memory_mb * 1024 * 1024)
    return Clean(settings, units, store, NearIndex(settings.near_index_max_hashes), budget)


@pytest.fixture
def dataset() -> tuple[uuid.UUID, str]:
    return uuid.uuid4(), f"ds-{uuid.uuid4().hex[:10]}"


def photo(seed: int) -> NDArray[np.uint8]:
    """A photo-like colour picture that passes every default check."""
    rng = np.random.default_rng(seed)
    img = np.zeros((480, 640, 3), np.float32)
    img += np.linspace(30, 200, 640, dtype=np.float32)[None, :, None] * rng.uniform(0.5, 1, 3)
    for _ in range(12):
        colour = [int(c) for c in rng.integers(0, 256, 3)]
        centre = (int(rng.integers(0, 640)), int(rng.integers(0, 480)))
        cv2.circle(img, centre, int(rng.integers(10, 90)), colour, -1)
    img += rng.normal(0, 12, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def png(pixels: NDArray[Any]) -> bytes:
    ok, data = cv2.imencode(".png", pixels)
    assert ok
    return data.tobytes()


async def ingested(
    clean: Clean, dataset: tuple[uuid.UUID, str], data: bytes, *, store: bool = True
) -> Event[AssetIngestedV1]:
    """An asset.ingested event whose file is in conveyor-raw (unless ``store`` is False)."""
    sha256 = hashlib.sha256(data).hexdigest()
    key = content_address(sha256)
    if store:
        await clean.store.put_stream(RAW_BUCKET, key, io.BytesIO(data), len(data), "image/png")
    asset_id = uuid.uuid4()
    payload = AssetIngestedV1(
        asset_id=asset_id,
        dataset_id=dataset[0],
        dataset_slug=dataset[1],
        sha256=sha256,
        size_bytes=len(data),
        media_type="image/png",
        filename=f"{asset_id}.png",
        source="upload",
        uploaded_by="alice",
        bucket=RAW_BUCKET,
        object_key=key if store else f"missing/{asset_id}",
    )
    envelope = Envelope(
        id=str(uuid.uuid4()),
        source="/conveyor/ingest",
        type=ASSET_INGESTED.name,
        time=datetime.now(UTC),
        subject=str(asset_id),
        data=payload.model_dump(mode="json"),
    )
    return Event(envelope, INGEST_EVENTS.name, payload)


async def announced(clean: Clean) -> list[dict[str, Any]]:
    """The envelopes clean's use cases put in the outbox, in the order they were written."""
    async with clean.units.read() as session:
        rows = (await session.execute(select(outbox).order_by(outbox.c.id))).all()
    return [row.envelope for row in rows]


async def stored(clean: Clean, asset_id: uuid.UUID) -> QualityReport | None:
    async with clean.units.read() as session:
        return await session.get(QualityReport, asset_id)


async def test_a_clean_image_gets_a_cleaned_report_and_one_asset_cleaned_event(
    clean: Clean, dataset: tuple[uuid.UUID, str]
) -> None:
    event = await ingested(clean, dataset, png(photo(1)))
    await cleaning.clean_assets(clean, [event])
    report = await reports.report(clean, BOB, event.payload.asset_id)
    assert report.status == "cleaned" and report.reasons == [] and report.duplicate_of is None
    (envelope,) = await announced(clean)
    assert envelope["type"] == "conveyor.asset.cleaned.v1"
    assert envelope["subject"] == str(event.payload.asset_id)
    assert envelope["data"]["dataset_slug"] == dataset[1]
    # the asset's dataset became addressable by slug before any dataset.created arrived
    assert (await reports.summary(clean, BOB, dataset[1])).cleaned == 1


async def test_the_same_pixels_again_are_rejected_as_an_exact_duplicate_of_the_first(
    clean: Clean, dataset: tuple[uuid.UUID, str]
) -> None:
    data = png(photo(2))
    first, in_run = await ingested(clean, dataset, data), await ingested(clean, dataset, data)
    await cleaning.clean_assets(clean, [first, in_run])
    later = await ingested(clean, dataset, data)
    await cleaning.clean_assets(clean, [later])
    original = first.payload.asset_id
    for copy in (in_run, later):
        report = await reports.report(clean, BOB, copy.payload.asset_id)
        assert report.status == "rejected"
        assert (report.duplicate_of, report.duplicate_kind) == (original, "exact_duplicate")
        assert [r.code for r in report.reasons] == ["exact_duplicate"]
    types = [e["type"] for e in await announced(clean)]
    assert types == ["conveyor.asset.cleaned.v1", *["conveyor.asset.rejected.v1"] * 2]
    groups = (await reports.duplicates(clean, BOB, dataset[1])).groups
    assert [g.original for g in groups] == [str(original)]
    assert [c["asset_id"] for c in groups[0].copies] == [
        str(in_run.payload.asset_id),
        str(later.payload.asset_id),
    ]


async def test_a_redelivered_event_is_not_judged_twice(
    clean: Clean, dataset: tuple[uuid.UUID, str]
) -> None:
    event = await ingested(clean, dataset, png(photo(3)))
    await cleaning.clean_assets(clean, [event])
    fresh = await ingested(clean, dataset, png(photo(4)))
    await cleaning.clean_assets(clean, [event, fresh])
    await cleaning.clean_assets(clean, [event])
    subjects = [e["subject"] for e in await announced(clean)]
    assert subjects == [str(event.payload.asset_id), str(fresh.payload.asset_id)]
    assert (await reports.summary(clean, BOB, dataset[1])).assets == 2


async def test_a_missing_file_fails_its_event_after_the_others_are_judged(
    clean: Clean, dataset: tuple[uuid.UUID, str]
) -> None:
    good = await ingested(clean, dataset, png(photo(5)))
    missing = await ingested(clean, dataset, png(photo(6)), store=False)
    with pytest.raises(MissingObject):
        await cleaning.clean_assets(clean, [missing, good])
    assert await stored(clean, good.payload.asset_id) is not None
    assert await stored(clean, missing.payload.asset_id) is None
    # not claimed: the consumer's retry of that event alone is judged then
    assert await clean.units.applied([good.envelope, missing.envelope]) == {good.id}


async def test_a_policy_change_re_judges_and_announces_only_the_changed_verdicts(
    clean: Clean, dataset: tuple[uuid.UUID, str]
) -> None:
    good = await ingested(clean, dataset, png(photo(7)))
    dark = await ingested(clean, dataset, png((photo(8) * 0.08).astype(np.uint8)))
    await cleaning.clean_assets(clean, [good, dark])
    assert (await reports.report(clean, BOB, dark.payload.asset_id)).status == "rejected"
    before = len(await announced(clean))

    change = await policy.set_policy(clean, BOB, dataset[1], PolicyRules(actions={"dark": "flag"}))

    assert (change.policy_version, change.assets_checked, change.assets_changed) == (1, 2, 1)
    (envelope,) = (await announced(clean))[before:]
    assert envelope["type"] == "conveyor.asset.cleaned.v1"
    assert envelope["subject"] == str(dark.payload.asset_id)
    assert [f["code"] for f in envelope["data"]["flags"]] == ["dark"]
    assert envelope["data"]["policy_version"] == 1
    for asset in (good, dark):
        report = await reports.report(clean, BOB, asset.payload.asset_id)
        assert (report.status, report.policy_version) == ("cleaned", 1)
    effective = await policy.get_policy(clean, BOB, dataset[1])
    assert effective.version == 1 and effective.checks["dark"].action == "flag"


async def test_the_summary_counts_outcomes_and_reasons_and_spreads_each_metric(
    clean: Clean, dataset: tuple[uuid.UUID, str]
) -> None:
    await datasets.remember_dataset(
        clean,
        Event(
            Envelope(
                id=str(uuid.uuid4()),
                source="/conveyor/ingest",
                type=DATASET_CREATED.name,
                time=datetime.now(UTC),
                data={},
            ),
            INGEST_EVENTS.name,
            DatasetCreatedV1(dataset_id=dataset[0], slug=dataset[1], name="N", created_by="a"),
        ),
    )
    pictures = [photo(10 + i) for i in range(5)]
    files = [png(p) for p in pictures]
    files += [png(cv2.GaussianBlur(pictures[0], (0, 0), 6)), files[1]]
    files += [png((pictures[2] * 0.08).astype(np.uint8)), png(pictures[3][:40, :400])]
    events = [await ingested(clean, dataset, data) for data in files]
    await cleaning.clean_assets(clean, events)

    summary = await reports.summary(clean, BOB, dataset[1])

    # the same figures as counting and taking percentiles over every stored report
    async with clean.units.read() as session:
        query = select(QualityReport).where(QualityReport.dataset_id == dataset[0])
        rows = (await session.execute(query.order_by(QualityReport.arrival))).scalars().all()
    statuses = Counter(r.status for r in rows)
    reasons = Counter(c["code"] for r in rows for c in r.reasons)
    flags = Counter(c["code"] for r in rows for c in r.flags)
    values: dict[str, list[float]] = {}
    for r in rows:
        for name, value in r.metrics.items():
            values.setdefault(name, []).append(float(value))
    assert (summary.assets, summary.cleaned, summary.rejected) == (
        len(files),
        statuses["cleaned"],
        statuses["rejected"],
    )
    assert summary.rejected >= 3
    assert list(summary.rejections_by_reason.items()) == reasons.most_common()
    assert list(summary.flags_by_reason.items()) == flags.most_common()
    assert list(summary.metric_distributions) == sorted(values)
    for name, found in summary.metric_distributions.items():
        expected = {
            q: float(np.percentile(values[name], p))
            for q, p in (("min", 0), ("p05", 5), ("p50", 50), ("p95", 95), ("max", 100))
        }
        assert list(found) == list(expected)
        assert found == pytest.approx(expected, rel=1e-12, abs=1e-12)


async def test_a_key_limited_to_other_datasets_finds_nothing_of_this_one(
    clean: Clean, dataset: tuple[uuid.UUID, str]
) -> None:
    event = await ingested(clean, dataset, png(photo(3)))
    await cleaning.clean_assets(clean, [event])
    outsider = Principal("k-out", "outsider", Role.admin, frozenset({str(uuid.uuid4())}))
    insider = Principal("k-in", "insider", Role.viewer, frozenset({str(dataset[0])}))
    assert (await reports.report(clean, insider, event.payload.asset_id)).status == "cleaned"
    for call in (
        reports.report(clean, outsider, event.payload.asset_id),
        reports.summary(clean, outsider, dataset[1]),
        reports.duplicates(clean, outsider, dataset[1]),
        policy.get_policy(clean, outsider, dataset[1]),
        policy.set_policy(clean, outsider, dataset[1], PolicyRules()),
    ):
        with pytest.raises(ApiError) as caught:
            await call
        assert caught.value.status == 404
