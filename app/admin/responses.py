"""OpenAPI descriptions of the admin API's error answers, with examples."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path

from app.core.http import ErrorResponse


def error(description: str, code: str, message: str) -> dict[str, Any]:
    """One documented error answer in the `{"error": {code, message, details}}` shape."""
    return {
        "model": ErrorResponse,
        "description": description,
        "content": {
            "application/json": {
                "example": {"error": {"code": code, "message": message, "details": []}}
            }
        },
    }


UNAUTHORIZED = error("missing or invalid bearer token", "unauthorized", "missing bearer token")
BAD_REQUEST = error("malformed request or invalid value", "validation_error", "limit: too large")
FORBIDDEN = error(
    "the token's role may not do this (viewer: read; operator: also trigger, cancel, pause)",
    "forbidden",
    "the viewer role may not operate (token 'support'); ask an admin",
)
NOT_FOUND = error("no such installation or run", "not_found", "no installation for company 7")
CONFLICT = error("conflicts with the current state", "conflict", "a sync is already running")
REJECTED = error(
    "Procore rejected the credentials",
    "unprocessable",
    "Procore rejected the credentials: Client authentication failed",
)
UNAVAILABLE = error("Procore could not be reached", "unavailable", "could not check credentials")
TOO_LARGE = error("request body over the size limit", "payload_too_large", "body too large")

ALWAYS: dict[int | str, dict[str, Any]] = {
    400: BAD_REQUEST,
    401: UNAUTHORIZED,
    403: FORBIDDEN,
    413: TOO_LARGE,
}


# A company id in an admin path.
CompanyId = Annotated[int, Path(gt=0, lt=2**63, description="Procore company id", examples=[123])]
