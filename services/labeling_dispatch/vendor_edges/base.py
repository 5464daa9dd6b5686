"""What dispatch needs from a kind of vendor: send a batch, take results, reconcile.

A webhook vendor is pushed to and pushes back, so only ``send`` does anything for it; a
vendor that is polled (a Label Studio server) takes its answers in ``take_results`` and says
in ``reconcile`` which tasks it no longer holds. Dispatch only talks to this interface.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class VendorTarget:
    """Where and how to reach one vendor (from its row)."""

    id: uuid.UUID
    kind: str
    url: str | None
    secret: str
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outbound:
    """One delivery to send: its id and the exact bytes stored for it."""

    delivery_id: uuid.UUID
    body: bytes


@dataclass(frozen=True)
class SendOutcome:
    """How one try went: the status code (None: no answer), latency, error, the vendor's hint.

    ``excerpt`` is the start of the answer's body, kept for the delivery log only.
    """

    status_code: int | None
    latency_ms: float
    error: str | None = None
    retry_after: str | None = None
    excerpt: str | None = None


@dataclass(frozen=True)
class VendorResult:
    """An annotation a polled vendor handed over (canonical shapes, converted at the edge)."""

    task_id: uuid.UUID
    annotator_id: str
    shapes: list[dict[str, Any]]
    submitted_at: datetime | None


class VendorEdge(Protocol):
    """One kind of vendor, as dispatch sees it."""

    kind: str

    async def send(self, vendor: VendorTarget, delivery: Outbound) -> SendOutcome:
        """Try a delivery once; never raises for the vendor's failures (they are outcomes)."""
        ...

    async def take_results(self, vendor: VendorTarget) -> Sequence[VendorResult]:
        """Annotations the vendor has ready that Conveyor has not taken yet."""
        ...

    async def reconcile(
        self, vendor: VendorTarget, held: Sequence[uuid.UUID]
    ) -> Sequence[uuid.UUID]:
        """Of the tasks Conveyor believes ``vendor`` holds, those it does not have."""
        ...
