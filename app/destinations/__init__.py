"""Destinations: where synced records go (SQL tables, JSON-lines files, signed HTTP push)."""

from app.destinations.base import (
    Destination,
    DestinationError,
    DestinationRejected,
    InvalidDestinationURL,
    QuarantinedRecord,
    WriteResult,
)
from app.destinations.factory import create_destination
from app.destinations.policy import DestinationPolicy
from app.destinations.records import DestinationRecord
from app.destinations.signing import WebhookVerificationError, generate_signing_secret
from app.destinations.urls import redact_destination_url, validate_destination_url

__all__ = [
    "Destination",
    "DestinationError",
    "DestinationPolicy",
    "DestinationRecord",
    "DestinationRejected",
    "InvalidDestinationURL",
    "QuarantinedRecord",
    "WebhookVerificationError",
    "WriteResult",
    "create_destination",
    "generate_signing_secret",
    "redact_destination_url",
    "validate_destination_url",
]
