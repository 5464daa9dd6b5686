"""The dashboard's JSON API (what the page reads), one router module per page. Routes only
validate, call a use case and answer."""

from fastapi import APIRouter

from services.dashboard.api import overview

router = APIRouter()
router.include_router(overview.router)
