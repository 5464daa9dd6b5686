"""What dispatch needs from a kind of vendor: send a batch.

A webhook vendor is POSTed to; a Label Studio server has the batch imported into a project.
How answers come back differs by kind and is not dispatch's business (the vendor webhook;
Label Studio's webhook and reconcile). Dispatch only talks to this interface.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
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
    """One delivery to send: its id and the exact bytes stored for it.

    ``first_try``: no try of it was ever started (not even one cut short by a crash), so the
    vendor cannot hold any of it yet.
    """

    delivery_id: uuid.UUID
    body: bytes
    first_try: bool = False


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


class VendorEdge(Protocol):
    """One kind of vendor, as dispatch sees it."""

    kind: str

    async def send(self, vendor: VendorTarget, delivery: Outbound) -> SendOutcome:
        """Try a delivery once; never raises for the vendor's failures (they are outcomes)."""
        ...
