"""What the dashboard's use cases work with, built once in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from services.dashboard.settings import DashboardSettings
from shared.storage import ObjectStore
from shared.uow import UnitsOfWork

SOURCE = "/conveyor/dashboard"


@dataclass
class Dashboard:
    """The dashboard's dependencies: settings, units of work over its projections, the object
    store (thumbnails) and one HTTP client for the other services' APIs."""

    settings: DashboardSettings
    units: UnitsOfWork
    store: ObjectStore
    http: httpx.AsyncClient
