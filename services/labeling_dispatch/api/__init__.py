"""Labeling-dispatch's HTTP API, one router module per resource.

Routes only validate, call a use case and answer.
"""

from fastapi import APIRouter

from services.labeling_dispatch.api import (
    deliveries,
    jobs,
    label_studio,
    ontologies,
    predictions,
    tasks,
    vendor_tasks,
    vendors,
    webhooks,
)

router = APIRouter()
router.include_router(vendors.router)
router.include_router(jobs.router)
router.include_router(tasks.router)
router.include_router(predictions.router)
router.include_router(ontologies.router)
router.include_router(webhooks.router)
router.include_router(label_studio.router)
router.include_router(vendor_tasks.router)
router.include_router(deliveries.router)
