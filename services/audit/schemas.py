"""Response bodies of the audit API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class RecordOut(BaseModel):
    """One audit record."""

    seq: int
    event_id: str
    type: str
    subject: str | None
    actor: str | None
    service: str
    time: datetime
    trace_id: str | None
    topic: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str
    recorded_at: datetime


class RecordPage(BaseModel):
    """A page of records in chain order; pass ``next_cursor`` back as ``cursor``."""

    items: list[RecordOut]
    next_cursor: str | None


class Timeline(BaseModel):
    """Everything that happened to one asset, oldest first."""

    asset_id: str
    items: list[RecordOut]


class BrokenRecord(BaseModel):
    """The first record that does not fit the chain."""

    seq: int
    event_id: str | None
    reason: str


class VerifyResult(BaseModel):
    """Outcome of recomputing the whole chain."""

    ok: bool
    records_checked: int
    first_broken: BrokenRecord | None
