"""What ingest's use cases need, built once in the lifespan (see :mod:`services.ingest.app`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from services.ingest.group_commit import GroupCommit
from services.ingest.models import Dataset
from services.ingest.settings import IngestSettings
from shared.storage import ObjectStore
from shared.uow import UnitsOfWork

# The CloudEvents source of every event ingest emits.
SOURCE = "/conveyor/ingest"


@dataclass
class Ingest:
    """Ingest's dependencies: settings, units of work, the object store and in-process state."""

    settings: IngestSettings
    units: UnitsOfWork
    store: ObjectStore
    # Datasets are never changed or deleted, so a found one can be remembered (by slug).
    datasets: dict[str, Dataset] = field(default_factory=dict)
    # Set when the landing bucket should be listed once (a notification could not be recorded).
    reconcile_wanted: asyncio.Event = field(default_factory=asyncio.Event)
    # Upload registrations of concurrent requests, committed together (set on first use by
    # :mod:`services.ingest.use_cases.uploads`, which knows the item and result types).
    upload_registrations: GroupCommit[Any, Any] | None = None
