"""The dashboard's JSON API (what the page reads), one router module per page. Routes only
validate, call a use case and answer."""

from fastapi import APIRouter

from services.dashboard.api import assets, backlog, cleaning, health, overview, vendors

router = APIRouter()
for module in (overview, backlog, cleaning, vendors, assets, health):
    router.include_router(module.router)
