"""Domain errors of the installations package (their HTTP status is decided at the edge)."""

from __future__ import annotations

from app.core.errors import BadRequest, Conflict, NotFound


class InstallationNotFound(NotFound):
    """No installation exists for this company."""


class InstallationNotSyncable(Conflict):
    """The installation cannot run syncs now (uninstalled, or its credentials were rejected)."""


class NotAnHTTPDestination(Conflict):
    """The installation does not push to an HTTP destination."""


class InvalidSigningSecret(BadRequest):
    """A signing secret given by an operator is not `whsec_` + base64 of 24 to 64 bytes."""

    def __init__(self, message: str) -> None:
        super().__init__(message, details=[{"field": "signing_secret"}])


class EnvironmentNotServed(BadRequest):
    """The installation's Procore environment has no credentials in this deployment."""


class CompanyNotListed(NotFound):
    """The company is not in the app's `/companies` listing (the app is not installed there)."""
