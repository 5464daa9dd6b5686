"""QC's background loops (besides the consumer and the outbox relay), started by the app."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from services.qc.context import Qc
from services.qc.use_cases.exports import run_export_builder
from services.qc.use_cases.sweep import run_consensus_sweep

Loop = Callable[[], Coroutine[Any, Any, None]]


def background_loops(qc: Qc) -> list[tuple[str, Loop]]:
    """(name, loop) of every background loop of the service."""
    return [
        ("qc-consensus-sweep", lambda: run_consensus_sweep(qc)),
        ("qc-export-builder", lambda: run_export_builder(qc)),
    ]
