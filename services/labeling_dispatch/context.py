"""What labeling-dispatch's use cases work with, built once in the lifespan."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from services.labeling_dispatch.settings import LabelingSettings
from shared.storage import ObjectStore
from shared.uow import UnitsOfWork

if TYPE_CHECKING:
    from services.labeling_dispatch.use_cases.submissions import AnswerBatcher

SOURCE = "/conveyor/labeling-dispatch"


@dataclass
class Labeling:
    """Labeling-dispatch's dependencies: settings, units of work, the object store (for image
    links), the HTTP client deliveries go out on, and small in-process caches.

    ``wake_dispatcher`` is set when work for the dispatcher appears (new tasks, a resumed job,
    an expired lease), so a task does not wait for the next tick. ``answers`` commits accepted
    webhook answers together while the service runs (None: each request commits alone).
    """

    settings: LabelingSettings
    units: UnitsOfWork
    store: ObjectStore
    http: httpx.AsyncClient
    wake_dispatcher: asyncio.Event = field(default_factory=asyncio.Event)
    known_datasets: set[uuid.UUID] = field(default_factory=set)
    answers: AnswerBatcher | None = None
