"""A started service keeps its start-up heap out of the garbage collector's full collections."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator

from fastapi import FastAPI

from shared.http import create_app
from shared.runtime import YOUNG_COLLECTION_THRESHOLD, settled_heap


def test_the_heap_is_frozen_while_settled_and_collectable_again_after() -> None:
    before = gc.get_threshold()
    with settled_heap():
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *before[1:])
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


async def test_an_app_settles_its_heap_once_its_own_start_up_is_done() -> None:
    seen: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        seen["during start-up"] = gc.get_freeze_count()
        yield

    app = create_app(service="test", title="t", description="d", lifespan=lifespan)
    async with app.router.lifespan_context(app):
        serving = gc.get_freeze_count()
    assert seen["during start-up"] == 0
    assert serving > 0
    assert gc.get_freeze_count() == 0
