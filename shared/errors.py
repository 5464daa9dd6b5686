"""The one error shape every Conveyor API returns."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    """Machine-readable code, human message and optional details."""

    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorBody(BaseModel):
    """``{"error": {"code": ..., "message": ..., "details": {...}}}``"""

    error: ErrorDetail


class ApiError(Exception):
    """An expected failure that maps to a 4xx response with an :class:`ErrorBody`."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}

    def body(self) -> dict[str, Any]:
        """The JSON body of the response."""
        detail = ErrorDetail(code=self.code, message=self.message, details=self.details)
        return ErrorBody(error=detail).model_dump(mode="json")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting the error body for the given statuses."""
    return {status: {"model": ErrorBody} for status in statuses}
