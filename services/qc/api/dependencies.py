"""What QC's routes take: the service context, the caller's role, page parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from services.qc.context import Qc
from shared.auth import Principal, Role, require


def get_qc(request: Request) -> Qc:
    """The use cases' context, built in the lifespan."""
    qc: Qc = request.app.state.qc
    return qc


QcDep = Annotated[Qc, Depends(get_qc)]
Viewer = Annotated[Principal, require(Role.viewer)]
Uploader = Annotated[Principal, require(Role.uploader)]
Admin = Annotated[Principal, require(Role.admin)]
Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
CursorParam = Annotated[str | None, Query(description="next_cursor from the previous page")]
