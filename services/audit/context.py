"""What audit's use cases work with, built once in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from shared.uow import UnitsOfWork

# The CloudEvents source audit would stamp on an event (it emits none).
SOURCE = "/conveyor/audit"


@dataclass(frozen=True)
class Audit:
    """Audit's dependencies: the log is only database work, so only its units of work.

    Audit emits no events and keeps no inbox (a redelivered event is recognised by its id in
    the log), so its units of work have neither outbox nor inbox.
    """

    units: UnitsOfWork
