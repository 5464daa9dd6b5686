"""The vendors page's API (being built)."""

from __future__ import annotations

from fastapi import APIRouter

from shared.errors import error_responses

router = APIRouter(prefix="/v1", tags=["vendors"], responses=error_responses(401, 403))
