"""Near-duplicate hashes stored and read back on the real Postgres (rolled back per test):
reports stored with the older, 18-region crop grid and with today's come back as one table."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.clean import repository as repo
from services.clean.checks.fingerprint import OLD_CROP_REGIONS
from services.clean.domain import ReportRow
from services.clean.near_index import CROPS, DatasetHashes


def report(dataset: uuid.UUID, arrival: int, phash: int, crops: tuple[int, ...]) -> ReportRow:
    return ReportRow(
        asset_id=uuid.UUID(int=arrival),
        dataset_id=dataset,
        media_type="image/jpeg",
        status="cleaned",
        metrics={},
        structural=[],
        reasons=[],
        flags=[],
        pixel_sha256=None,
        phash=phash,
        crop_hashes=crops,
        duplicate_of=None,
        duplicate_code=None,
        duplicate_distance=None,
        duplicate_overlap=None,
        arrival=arrival,
        policy_version=0,
    )


async def test_near_duplicate_hashes_of_the_older_crop_grid_are_read_padded_with_the_full_hash(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    dataset = uuid.uuid4()
    old_full = 0xF123_4567_89AB_CDEF  # above 2**63: stored as a negative bigint
    old_crops = tuple(0x5555_5555_5555_0000 + i for i in range(OLD_CROP_REGIONS))
    new_full = 0x0123_4567_89AB_CDEF
    new_crops = tuple(2**63 + i for i in range(CROPS))
    async with sessions() as session, session.begin():
        await repo.insert_reports(
            session,
            [report(dataset, 1, old_full, old_crops), report(dataset, 2, new_full, new_crops)],
        )
    async with sessions() as session, session.begin():
        rows = await repo.hashes_since(session, dataset, 0)
    assert rows.arrivals.tolist() == [1, 2]
    assert rows.hashes.tolist() == [old_full, new_full]
    assert rows.crops.shape == (2, CROPS)
    assert rows.crops[0].tolist() == [*old_crops, *[old_full] * (CROPS - OLD_CROP_REGIONS)]
    assert rows.crops[1].tolist() == list(new_crops)
    copy = DatasetHashes()
    copy.extend(rows)
    # the older row's padding is never closer than its full hash; the newer one's crop is found
    (found,) = copy.candidates(new_crops[-1] ^ (0b11 << 20), [])
    assert found.asset_id == uuid.UUID(int=2) and found.hashes.crop == 2
