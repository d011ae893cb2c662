"""Domain error families. Services raise domain-named subclasses (`InstallationNotFound`,
`RunAlreadyActive`, ...); only the HTTP edge (`app/core/http.py`, `HTTP_STATUS`) decides which
status code a family answers with."""

from __future__ import annotations

from typing import Any


class ConnectorError(Exception):
    """Base of every error the service reports to a caller."""

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

    code = "bad_request"


class Unauthorized(ConnectorError):
    """Missing or wrong credentials for this endpoint."""

    code = "unauthorized"


class Forbidden(ConnectorError):
    """Authenticated, but not allowed to do this."""

    code = "forbidden"


class NotFound(ConnectorError):
    """The addressed object does not exist."""

    code = "not_found"


class Conflict(ConnectorError):
    """The request conflicts with the current state (e.g. a run is already going)."""

    code = "conflict"


class PayloadTooLarge(ConnectorError):
    """The request body is over the configured limit."""

    code = "payload_too_large"


class Unprocessable(ConnectorError):
    """Well-formed but refused, e.g. credentials Procore rejects."""

    code = "unprocessable"


class ServiceUnavailable(ConnectorError):
    """A dependency (database, key, scheduler) is not ready."""

    code = "unavailable"


class ConfigurationError(ConnectorError):
    """The service cannot run with the given configuration."""

    code = "configuration_error"


class DecryptionError(ConnectorError):
    """A stored secret cannot be decrypted with the configured keys."""

    code = "decryption_error"
