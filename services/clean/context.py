"""What clean's use cases work with, built once in the lifespan."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from services.clean.checks.budget import DecodeBudget
from services.clean.near_index import NearIndex
from services.clean.settings import CleanSettings
from services.clean.video_index import VideoIndex
from shared.storage import ObjectStore
from shared.uow import UnitsOfWork

SOURCE = "/conveyor/clean"


@dataclass
class Clean:
    """The clean service's dependencies: settings, units of work, the object store and the
    in-process caches (near-duplicate hashes, datasets whose slug is already recorded)."""

    settings: CleanSettings
    units: UnitsOfWork
    store: ObjectStore
    near_index: NearIndex
    decode_budget: DecodeBudget
    known_datasets: set[uuid.UUID] = field(default_factory=set)
    # each dataset's video fingerprints, for duplicate videos (see video_index)
    video_index: VideoIndex = field(default_factory=VideoIndex)
