"""What QC's use cases work with, built once in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from services.qc.settings import QcSettings
from shared.storage import ObjectStore
from shared.uow import UnitsOfWork

SOURCE = "/conveyor/qc"
ACTOR = "qc"


@dataclass
class Qc:
    """QC's dependencies: settings, units of work, the object store (exports)."""

    settings: QcSettings
    units: UnitsOfWork
    store: ObjectStore
