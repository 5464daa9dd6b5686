"""The dispatcher: queued tasks into vendor deliveries, lapsed leases back to the queue."""

from __future__ import annotations

import asyncio
import contextlib

from services.labeling_dispatch.context import Labeling


async def run_dispatcher(labeling: Labeling) -> None:
    """Run until cancelled, waking on ``labeling.wake_dispatcher`` or every interval."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                labeling.wake_dispatcher.wait(), labeling.settings.dispatch_interval_seconds
            )
        labeling.wake_dispatcher.clear()
