"""What labeling's routes take: the service context, the caller's role, page parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from services.labeling_dispatch.context import Labeling
from shared.auth import Principal, Role, require


def get_labeling(request: Request) -> Labeling:
    """The use cases' context, built in the lifespan."""
    labeling: Labeling = request.app.state.labeling
    return labeling


LabelingDep = Annotated[Labeling, Depends(get_labeling)]
Viewer = Annotated[Principal, require(Role.viewer)]
Uploader = Annotated[Principal, require(Role.uploader)]
Admin = Annotated[Principal, require(Role.admin)]
Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
CursorParam = Annotated[str | None, Query(description="next_cursor from the previous page")]
