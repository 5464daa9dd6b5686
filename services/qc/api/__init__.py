"""QC's HTTP API, one router module per resource. Routes only validate, call a use case and
answer."""

from fastapi import APIRouter

from services.qc.api import agreement, policies, reviews, versions
from services.qc.api import scorecards as scorecards_api

router = APIRouter()
router.include_router(reviews.router)
router.include_router(policies.router)
router.include_router(scorecards_api.router)
router.include_router(versions.router)
router.include_router(agreement.router)
