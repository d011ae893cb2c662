"""Domain errors that carry their HTTP status and error code, rendered by one handler."""

from __future__ import annotations

from typing import Any


class ConnectorError(Exception):
    """Base of every error the service reports to a caller."""

    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def to_body(self) -> dict[str, Any]:
        """The `{"error": {code, message, details}}` body of SPEC section 4."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(ConnectorError):
    """The request is malformed or names a bad value."""

    status_code = 400
    code = "bad_request"


class Unauthorized(ConnectorError):
    """Missing or wrong credentials for this endpoint."""

    status_code = 401
    code = "unauthorized"


class NotFound(ConnectorError):
    """The addressed object does not exist."""

    status_code = 404
    code = "not_found"


class Conflict(ConnectorError):
    """The request conflicts with the current state (e.g. a run is already going)."""

    status_code = 409
    code = "conflict"


class PayloadTooLarge(ConnectorError):
    """The request body is over the configured limit."""

    status_code = 413
    code = "payload_too_large"


class Unprocessable(ConnectorError):
    """Well-formed but refused, e.g. credentials Procore rejects."""

    status_code = 422
    code = "unprocessable"


class ServiceUnavailable(ConnectorError):
    """A dependency (database, key, scheduler) is not ready."""

    status_code = 503
    code = "unavailable"


class ConfigurationError(ConnectorError):
    """The service cannot run with the given configuration."""

    code = "configuration_error"


class DecryptionError(ConnectorError):
    """A stored secret cannot be decrypted with the configured keys."""

    code = "decryption_error"
