"""What every page filters by: the datasets the caller may see, narrowed to one, and a time
window."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from services.dashboard.context import Dashboard
from services.dashboard.repository import queries
from services.dashboard.repository.queries import Window
from shared.auth import Principal
from shared.errors import ApiError


@dataclass(frozen=True)
class Filter:
    """A request's window, and the slug of the one dataset it asked for (None: all visible)."""

    window: Window
    slug: str | None = None


def visible_datasets(principal: Principal) -> tuple[uuid.UUID, ...] | None:
    """The datasets a key is limited to (None: every dataset)."""
    if principal.datasets is None:
        return None
    return tuple(uuid.UUID(d) for d in sorted(principal.datasets))


async def resolve(
    dashboard: Dashboard,
    principal: Principal,
    dataset: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Filter:
    """The filter of a request: 404 for a dataset the caller cannot see or that is unknown,
    400 for a window that ends before it starts."""
    since, until = _aware(since), _aware(until)
    if since is not None and until is not None and until <= since:
        raise ApiError(400, "invalid_window", "until must be after since")
    if dataset is None:
        return Filter(Window(visible_datasets(principal), since, until))
    async with dashboard.units.read() as session:
        found = await queries.dataset_by_slug(session, dataset)
    if found is None or not principal.sees(found):
        raise ApiError(404, "dataset_not_found", f"no dataset {dataset!r}")
    return Filter(Window((found,), since, until), dataset)


def _aware(at: datetime | None) -> datetime | None:
    """A time without a zone is taken as UTC."""
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at
