"""Ingest's upload plumbing without I/O: the group commit and the chunk spool."""

from __future__ import annotations

import asyncio
import os

import pytest

from services.ingest.group_commit import GroupCommit
from services.ingest.upload_stream import ChunkSpool


async def test_requests_arriving_during_a_flush_share_the_next_one() -> None:
    batches: list[list[int]] = []
    release = asyncio.Event()

    async def flush(items: list[int]) -> list[int | Exception]:
        batches.append(items)
        if len(batches) == 1:
            await release.wait()  # the first flush is slow: the others queue behind it
        return [ValueError(f"bad {i}") if i == 3 else i * 10 for i in items]

    group: GroupCommit[int, int] = GroupCommit(flush)
    first = asyncio.create_task(group.submit(0))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(group.submit(i)) for i in (1, 2, 3)]
    await asyncio.sleep(0)
    release.set()
    assert await first == 0
    assert [await rest[0], await rest[1]] == [10, 20]
    with pytest.raises(ValueError, match="bad 3"):
        await rest[2]  # one item's failure is its own
    assert batches == [[0], [1, 2, 3]]


async def test_a_cancelled_waiter_does_not_stop_its_batch() -> None:
    flushed: list[list[str]] = []
    gate = asyncio.Event()

    async def flush(items: list[str]) -> list[str | Exception]:
        await gate.wait()
        flushed.append(items)
        return [item.upper() for item in items]

    group: GroupCommit[str, str] = GroupCommit(flush)
    leaver = asyncio.create_task(group.submit("a"))
    stayer = asyncio.create_task(group.submit("b"))
    await asyncio.sleep(0)
    leaver.cancel()
    gate.set()
    assert await stayer == "B"
    assert flushed == [["a"], ["b"]]
    assert leaver.cancelled()


async def test_a_failing_flush_fails_every_item_of_its_batch_only() -> None:
    calls = 0

    async def flush(items: list[int]) -> list[int | Exception]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database away")
        return [item for item in items]

    group: GroupCommit[int, int] = GroupCommit(flush)
    with pytest.raises(ConnectionError):
        await group.submit(1)
    assert await group.submit(2) == 2


@pytest.mark.parametrize("limit", [1 << 20, 1000])  # in memory; rolled over to a file
def test_a_spool_reads_back_what_was_written_in_any_read_sizes(limit: int) -> None:
    chunks = [os.urandom(n) for n in (1, 700, 65536, 3, 0, 20000)]
    spool = ChunkSpool(limit)
    for chunk in chunks:
        spool.write(chunk)
    whole = b"".join(chunks)
    for size in (1, 999, 65536, len(whole) + 5):
        spool.seek(0)
        parts = []
        while part := spool.read(size):
            parts.append(part)
        assert b"".join(parts) == whole
        assert max(len(p) for p in parts) <= size
    spool.seek(0)
    assert spool.read() == whole
    spool.close()
