"""QC's HTTP API, one router module per resource. Routes only validate, call a use case and
answer."""

from fastapi import APIRouter

router = APIRouter()
